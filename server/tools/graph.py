"""`dialogue graph FLOW`: draw a flow as Graphviz (SVG, PNG, DOT) or Mermaid.

Nodes are shaped by kind; edges are labelled with what takes the call along them: a choice's
intent, key and keywords, a branch case, a default, a transfer failure, the no-input/no-match
escalation (dotted) and the global commands (dashed, from one "global commands" box, since
they apply at every node that listens). Subflows are drawn inlined, as the engine runs them,
with the `subflow` node that enters each copy and the `return` nodes that leave it shaped as
such (see `inlined_jump`); the flow file names the subflow and the outcomes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from server.engine.flow import (
    AiGatherNode,
    Collect,
    Flow,
    Fulfillment,
    HangUp,
    HoursNode,
    Node,
    RecordNode,
    SetNode,
    Transfer,
    WaitNode,
)
from server.engine.flowfile import SUBFLOW_SEPARATOR, SUBFLOWS_DIR, FlowError, load_subflows
from server.engine.flowfile.subflows import Return
from server.tools.common import (
    Edge,
    ToolError,
    command_edges,
    default_flows_dir,
    inlined_jump,
    kind_of,
    load_flow,
    load_yaml_lines,
    node_edges,
)

DOT_TIMEOUT_S = 60.0
_EXCERPT_CHARS = 18
_START, _COMMANDS, _BUDGET = "_start", "_commands", "_budget"


@dataclass(frozen=True, slots=True)
class Look:
    """How a kind of node is drawn in each notation."""

    dot_shape: str
    dot_style: str
    fill: str
    mermaid_open: str
    mermaid_close: str


_LOOKS = {
    "say": Look("box", "rounded,filled", "#e8f1fb", '["', '"]'),
    "menu": Look("hexagon", "filled", "#fff4d6", '{{"', '"}}'),
    "collect": Look("parallelogram", "filled", "#fff4d6", '[/"', '"/]'),
    "branch": Look("diamond", "filled", "#f0f0f0", '{"', '"}'),
    "transfer": Look("cds", "filled", "#e3f6e3", '>"', '"]'),
    "hangup": Look("doubleoctagon", "filled", "#fbe3e3", '(("', '"))'),
    "record": Look("cylinder", "filled", "#efe6fb", '[("', '")]'),
    "wait": Look("ellipse", "filled", "#f0f0f0", '(["', '"])'),
    "ai_gather": Look("component", "filled", "#efe6fb", '[\\"', '"\\]'),
    "set": Look("rect", "filled", "#f7f7e0", '[/"', '"\\]'),
    "fulfillment": Look("box3d", "filled", "#e0f4f7", '[["', '"]]'),
    "hours": Look("trapezium", "filled", "#f0f0f0", '[\\"', '"/]'),
    "subflow": Look("folder", "filled", "#e6f0e6", '((("', '")))'),
    "return": Look("house", "filled", "#e6f0e6", '("', '")'),
}
# A kind added to the engine after this tool: drawn plainly (and dashed), but drawn.
_UNKNOWN_LOOK = Look("box", "dashed", "#ffffff", '["', '"]')
_MERMAID_DASHED = "stroke-dasharray: 5 5"
_MERMAID_RESERVED = frozenset(
    {
        "end",
        "graph",
        "flowchart",
        "subgraph",
        "style",
        "class",
        "classdef",
        "click",
        "linkstyle",
        "direction",
        "default",
    }
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "graph",
        help="draw a flow: SVG/PNG/PDF via Graphviz dot, DOT or Mermaid text",
        description=(
            "Draw a flow. -o FILE picks the format by its suffix: .svg, .png, .pdf (Graphviz "
            "'dot' must be installed), .dot/.gv (Graphviz source), .mmd (Mermaid). Without -o, "
            "prints DOT, or Mermaid with --mermaid."
        ),
    )
    parser.add_argument(
        "flow",
        metavar="FLOW",
        help="a flow id (or routed flow selector) in --flows, or a flow file",
    )
    parser.add_argument(
        "--flows",
        type=Path,
        default=None,
        help="directory of flows (default: $DIALOGUE_FLOWS, else the demo flows)",
    )
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="FILE")
    parser.add_argument("--mermaid", action="store_true", help="Mermaid text instead of DOT")
    parser.set_defaults(run=run)


# -- labels -----------------------------------------------------------------------------------


def _excerpt(node: object) -> str:
    prompt = getattr(node, "prompt", None)
    items = getattr(prompt, "items", ())
    text = next((item.text or item.media_name or item.url for item in items), "")
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


def _detail(node: Node) -> str:
    if isinstance(node, Collect):
        return f"→ {node.slot} ({node.slot_type.value})"
    if isinstance(node, Transfer):
        return f"→ {node.target.kind} {node.target.value}"
    if isinstance(node, HangUp):
        return "reason: failed" if node.failed else ""
    if isinstance(node, RecordNode):
        return f"→ {node.slot}"
    if isinstance(node, WaitNode):
        return f"{node.duration_ms} ms"
    if isinstance(node, AiGatherNode):
        return node.greeting[:_EXCERPT_CHARS]
    if isinstance(node, SetNode):
        changes = [f"{name} = {value}" for name, value in node.values]
        changes += [f"{name} cleared" for name in node.clear]
        text = "; ".join(changes)
        return text if len(text) <= 2 * _EXCERPT_CHARS else text[: 2 * _EXCERPT_CHARS - 1] + "…"
    if isinstance(node, Fulfillment):
        return f"POST {node.url}"
    if isinstance(node, HoursNode):
        return node.timezone
    return ""


@dataclass(frozen=True, slots=True)
class SubflowUse:
    """What the flow's files say of one `subflow` node the loader inlined: the subflow it runs
    and, per node of that subflow that is a `return`, its outcome."""

    subflow: str
    returns: dict[str, str]


def subflow_uses(flow: Flow) -> dict[str, SubflowUse]:
    """The flow file's `subflow` nodes, read again from the file and the `subflows/` beside it
    (nested subflows are not written there: their jumps are drawn without names). Empty when
    the files cannot be read again."""
    source = Path(flow.source)
    try:
        data = load_yaml_lines(source.read_text(encoding="utf-8"), flow.source)
        library = load_subflows(source.parent / SUBFLOWS_DIR)
    except (OSError, UnicodeError, ToolError, FlowError):
        return {}
    nodes = data.get("nodes") if isinstance(data, dict) else None
    uses: dict[str, SubflowUse] = {}
    for node_id, body in (nodes or {}).items():
        if not isinstance(body, dict) or body.get("type") != "subflow":
            continue
        subflow = library.get(str(body.get("flow", "")))
        if subflow is None:
            continue
        returns = {
            inner_id: inner.outcome
            for inner_id, inner in subflow.nodes.items()
            if isinstance(inner, Return)
        }
        uses[str(node_id)] = SubflowUse(subflow.id, returns)
    return uses


def drawn_kind(node: Node) -> str:
    """The kind a node is drawn as: its own, or the subflow/return its jump was written as."""
    return inlined_jump(node) or kind_of(node)


def _jump_detail(node: Node, uses: dict[str, SubflowUse]) -> str:
    jump = inlined_jump(node)
    if jump == "subflow":
        use = uses.get(node.id)
        return use.subflow if use else ""
    if jump == "return":
        caller, _, inner = node.id.partition(SUBFLOW_SEPARATOR)
        use = uses.get(caller)
        return use.returns.get(inner, "") if use else ""
    return ""


def node_label_lines(node: Node, uses: dict[str, SubflowUse] | None = None) -> list[str]:
    lines = [node.id, drawn_kind(node)]
    detail = _jump_detail(node, uses or {}) if inlined_jump(node) else _detail(node)
    for extra in (detail, _excerpt(node)):
        if extra:
            lines.append(extra)
    return lines


def drawn_edges(flow: Flow, node: Node, uses: dict[str, SubflowUse]) -> list[Edge]:
    """A node's edges as drawn: a subflow's entry unlabelled, a return's by its outcome."""
    edges = node_edges(flow, node)
    jump = inlined_jump(node)
    if jump == "subflow":
        return [replace(edge, label="") for edge in edges]
    if jump == "return":
        outcome = _jump_detail(node, uses)
        return [replace(edge, label=f"returns {outcome}" if outcome else "") for edge in edges]
    return edges


def _commands_label(flow: Flow) -> list[str]:
    lines = ["global commands", "(at every listening node)"]
    lines += [
        f"{command.intent}" + (f" [{command.key}]" if command.key else "") + ": replays the prompts"
        for command in flow.commands
        if command.repeat
    ]
    return lines


# -- DOT --------------------------------------------------------------------------------------


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _dot_label(lines: list[str]) -> str:
    return '"' + "\\n".join(_dot_text(line) for line in lines) + '"'


def _dot_edge(edge: Edge, source: str) -> str:
    attributes = [f"label={_dot_label([edge.label])}"] if edge.label else []
    if edge.kind == "command":
        attributes.append('style=dashed, color="#2f6fb0", fontcolor="#2f6fb0"')
    elif edge.kind in ("escalation", "budget"):
        attributes.append('style=dotted, color="#b04a2f", fontcolor="#b04a2f"')
    elif edge.kind == "failure":
        attributes.append('color="#b04a2f", fontcolor="#b04a2f"')
    return (
        f'  "{source}" -> "{edge.target}"'
        + (f" [{', '.join(attributes)}]" if attributes else "")
        + ";"
    )


def to_dot(flow: Flow, uses: dict[str, SubflowUse] | None = None) -> str:
    """The flow as Graphviz DOT source; `uses` names its subflows (`subflow_uses`)."""
    uses = uses or {}
    font = "Noto Sans CJK SC,Noto Sans,Helvetica,sans-serif"
    lines = [
        f'digraph "{_dot_text(flow.id)}" {{',
        f'  graph [label="{_dot_text(flow.id)} {_dot_text(flow.version)}", labelloc=t, fontname="{font}", rankdir=TB];',
        f'  node [fontname="{font}", fontsize=10];',
        f'  edge [fontname="{font}", fontsize=9];',
        f'  "{_START}" [shape=point, width=0.15, label=""];',
        f'  "{_START}" -> "{flow.start}";',
    ]
    for node in flow.nodes.values():
        look = _LOOKS.get(drawn_kind(node), _UNKNOWN_LOOK)
        lines.append(
            f'  "{node.id}" [shape={look.dot_shape}, style="{look.dot_style}", '
            f'fillcolor="{look.fill}", label={_dot_label(node_label_lines(node, uses))}];'
        )
    for node in flow.nodes.values():
        lines += [_dot_edge(edge, node.id) for edge in drawn_edges(flow, node, uses)]
    commands = command_edges(flow)
    if flow.commands:
        lines.append(
            f'  "{_COMMANDS}" [shape=note, style=filled, fillcolor="#eef4fb", '
            f"label={_dot_label(_commands_label(flow))}];"
        )
        lines += [_dot_edge(edge, _COMMANDS) for edge in commands]
    budget = flow.defaults.on_failure_budget if flow.defaults.max_failures else ""
    if budget:
        label = ["failure budget", f"{flow.defaults.max_failures} failures in the call"]
        lines.append(f'  "{_BUDGET}" [shape=note, label={_dot_label(label)}];')
        lines.append(_dot_edge(Edge(_BUDGET, budget, "", "budget"), _BUDGET))
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_with_dot(dot_source: str, output: Path) -> None:
    """Runs Graphviz `dot` to write `output` in the format its suffix names.

    Raises:
        ToolError: dot is missing, fails, or takes longer than DOT_TIMEOUT_S.
    """
    fmt = output.suffix.lstrip(".").lower()
    try:
        result = subprocess.run(
            ["dot", f"-T{fmt}", "-o", str(output)],
            input=dot_source.encode(),
            capture_output=True,
            timeout=DOT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ToolError(
            "Graphviz 'dot' is not installed (Debian: apt-get install graphviz; `make setup` "
            "does it); -o FILE.dot or FILE.mmd work without it"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"dot took longer than {DOT_TIMEOUT_S:.0f}s; gave up") from exc
    if result.returncode != 0:
        raise ToolError(
            f"dot -T{fmt} failed (exit {result.returncode}): "
            + result.stderr.decode(errors="replace").strip()
        )


# -- Mermaid ----------------------------------------------------------------------------------


def _mermaid_id(node_id: str) -> str:
    # Mermaid reads some words as keywords ("end" closes a subgraph). Node ids start with a
    # letter, so a leading '_' cannot collide with another node.
    return "_" + node_id if node_id.lower() in _MERMAID_RESERVED else node_id


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def _mermaid_edge(edge: Edge, source: str) -> str:
    arrow = "-.->" if edge.kind in ("command", "escalation", "budget") else "-->"
    label = f'|"{_mermaid_text(edge.label)}"|' if edge.label else ""
    return f"  {source} {arrow}{label} {_mermaid_id(edge.target)}"


def to_mermaid(flow: Flow, uses: dict[str, SubflowUse] | None = None) -> str:
    """The flow as a Mermaid flowchart; `uses` names its subflows (`subflow_uses`)."""
    uses = uses or {}
    lines = [
        "---",
        f"title: {flow.id} {flow.version}",
        "---",
        "flowchart TD",
        f"  {_START}(( )) --> {_mermaid_id(flow.start)}",
    ]
    for node in flow.nodes.values():
        look = _LOOKS.get(drawn_kind(node), _UNKNOWN_LOOK)
        label = "<br/>".join(_mermaid_text(line) for line in node_label_lines(node, uses))
        lines.append(f"  {_mermaid_id(node.id)}{look.mermaid_open}{label}{look.mermaid_close}")
        if look is _UNKNOWN_LOOK:
            lines.append(f"  style {_mermaid_id(node.id)} {_MERMAID_DASHED}")
    for node in flow.nodes.values():
        lines += [
            _mermaid_edge(edge, _mermaid_id(node.id)) for edge in drawn_edges(flow, node, uses)
        ]
    if flow.commands:
        label = "<br/>".join(_mermaid_text(line) for line in _commands_label(flow))
        lines.append(f'  {_COMMANDS}["{label}"]')
        lines += [_mermaid_edge(edge, _COMMANDS) for edge in command_edges(flow)]
    budget = flow.defaults.on_failure_budget if flow.defaults.max_failures else ""
    if budget:
        label = f"failure budget<br/>{flow.defaults.max_failures} failures in the call"
        lines.append(f'  {_BUDGET}["{label}"]')
        lines.append(_mermaid_edge(Edge(_BUDGET, budget, "", "budget"), _BUDGET))
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    flow = load_flow(args.flow, args.flows or default_flows_dir())
    uses = subflow_uses(flow)
    output: Path | None = args.output
    if output is None:
        sys.stdout.write(to_mermaid(flow, uses) if args.mermaid else to_dot(flow, uses))
        return 0
    suffix = output.suffix.lower()
    if args.mermaid and suffix != ".mmd":
        raise ToolError(
            f"--mermaid writes Mermaid text: name the output FILE.mmd, not {output.name}"
        )
    if not suffix:
        raise ToolError(f"-o {output}: name a format by suffix (.svg, .png, .pdf, .dot, .mmd)")
    if suffix == ".mmd":
        output.write_text(to_mermaid(flow, uses), encoding="utf-8")
    elif suffix in (".dot", ".gv"):
        output.write_text(to_dot(flow, uses), encoding="utf-8")
    else:
        render_with_dot(to_dot(flow, uses), output)
    print(f"wrote {output}")
    return 0
