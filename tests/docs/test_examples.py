"""Every YAML example of the flow guides passes `dialogue validate --strict`.

The ```yaml blocks of docs/flows.md, docs/tools.md and README.md are found and each is checked
by the code behind `dialogue validate --strict` (server.tools.validate: the loader's checks,
then the static checks; with --strict any warning fails), in a fresh flows directory holding
the demo subflows and the guides' own. What a block is, is told by its top-level keys:

| kind | top-level keys | checked as |
|---|---|---|
| flow | `flow:` and `nodes:` | a flow file; an outline that leaves parts out (`…`) is completed as a fragment is |
| subflow | `subflow:` | a subflow file, used by a minimal flow with a target for each outcome |
| routing | `routes:` and/or `default:` | the demo flows' `routing.yaml` |
| nodes | `nodes:` alone, or node ids whose values each have a `type:` | nodes of a minimal flow |
| commands | `commands:` | the global commands of a minimal flow |
| prompts | `prompt:` (repeated: one form per occurrence) | prompts of `say` nodes |
| conversation test | `cases:` | not a flow: `dialogue test` files are not validated here |

A comment on the line before the fence overrides that: `<!-- example: KIND -->` with a kind
above, or `<!-- example: not checked, WHY -->`. A minimal flow starts at a menu leading to each
fragment node that no other fragment node leads to; the nodes a fragment names but leaves out
become `hangup` stubs, and the slots it reads without filling are declared (`slots:`), so what
is checked is the fragment itself. A fragment written per language (`en-US: …` keys) is
checked in a minimal flow declaring `languages:` zh-CN and those. Failures name the guide and the line of the block's fence.
"""

from __future__ import annotations

import re
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from server.engine.flowfile import parse_flow, parse_subflows
from server.tools.common import node_edges
from server.tools.lint import Finding
from server.tools.validate import check_directory
from tests.docs.blocks import fenced_blocks

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDES = ("docs/flows.md", "docs/tools.md", "README.md")
DEMO_FLOWS = REPO_ROOT / "flows"
KINDS = ("flow", "subflow", "routing", "nodes", "commands", "prompts", "conversation test")
_MARKER = re.compile(r"^<!-- example: (?P<kind>[^,]+?)(?:, (?P<why>.+?))? -->$")
_UNKNOWN_NODE = re.compile(r"unknown node '([a-z][a-z0-9_]*)'")
_UNKNOWN_PLACEHOLDER = re.compile(r"unknown placeholder '\{([a-z][a-z0-9_]*)\}'")
_ELIDED = "…"
# Names of the minimal flow's own nodes (fragments do not use them).
_ENTRY, _END = "example_entry", "example_end"
# Stubbing rounds: each round adds what the loader found missing; a fragment needs one or two.
_MAX_ROUNDS = 5


@dataclass(frozen=True, slots=True)
class Example:
    """One ```yaml block of a guide, with its kind (`not checked` with a reason, or None:
    not recognised)."""

    guide: str
    line: int
    body: str
    kind: str | None
    why: str = ""

    @property
    def where(self) -> str:
        return f"{self.guide}:{self.line}"


def _kind_by_keys(body: str) -> str | None:
    top = re.findall(r"^([A-Za-z_][\w.]*|\"[^\"]+\")\s*:", body, re.MULTILINE)
    keys = set(top)
    if {"flow", "nodes"} <= keys:
        return "flow"
    if "subflow" in keys:
        return "subflow"
    if "cases" in keys:
        return "conversation test"
    if keys and keys <= {"routes", "default"}:
        return "routing"
    if keys == {"nodes"}:
        return "nodes"
    if keys == {"commands"}:
        return "commands"
    if keys == {"prompt"}:
        return "prompts"
    try:
        data = yaml.safe_load(body)
    except yaml.YAMLError:
        return None
    if (
        isinstance(data, dict)
        and data
        and all(isinstance(node, dict) and "type" in node for node in data.values())
    ):
        return "nodes"
    return None


def examples(guide: str, text: str) -> list[Example]:
    """The guide's ```yaml blocks, each with its kind."""
    lines = text.splitlines()
    found = []
    for block in fenced_blocks(text):
        if block.language != "yaml":
            continue
        before = next((line for line in reversed(lines[: block.line - 1]) if line.strip()), "")
        marker = _MARKER.match(before.strip())
        if marker:
            kind = marker.group("kind")
            found.append(Example(guide, block.line, block.body, kind, marker.group("why") or ""))
        else:
            found.append(Example(guide, block.line, block.body, _kind_by_keys(block.body)))
    return found


_EXAMPLES = [
    example
    for guide in GUIDES
    if (REPO_ROOT / guide).is_file()
    for example in examples(guide, (REPO_ROOT / guide).read_text(encoding="utf-8"))
]
_CHECKED = [e for e in _EXAMPLES if e.kind not in ("not checked", "conversation test")]


def _guide_subflows() -> dict[str, str]:
    """The guides' subflows (file name → text), which their flows may use."""
    return {
        f"guide_{e.line}.yaml": e.body
        for e in _EXAMPLES
        if e.kind == "subflow" and _ELIDED not in e.body
    }


def _flows_dir(tmp_path: Path) -> Path:
    """A flows directory with the demo subflows and the guides' (a guide's one of the same id
    as a demo one replaces it)."""
    directory = tmp_path / "flows"
    subflows = directory / "subflows"
    subflows.mkdir(parents=True)
    guide = _guide_subflows()
    ids = set(parse_subflows(guide)) if guide else set()
    for path in sorted((DEMO_FLOWS / "subflows").glob("*.yaml")):
        if path.stem not in ids:
            shutil.copy(path, subflows / path.name)
    for name, body in guide.items():
        (subflows / name).write_text(body, encoding="utf-8")
    return directory


def _problems(findings: list[Finding]) -> str:
    return "\n".join(f"  {finding}" for finding in findings)


def _indented(text: str, spaces: int) -> str:
    return textwrap.indent(text, " " * spaces)


# A mapping key that is a language tag (BCP-47 language-REGION), as in `en-US: …`.
_LANGUAGE_KEY = re.compile(r"(?<![\w-])([a-z]{2,3}-[A-Z]{2})(?=\s*:)")


def _fragment_nodes(example: Example) -> str:
    """The block as YAML lines under `nodes:` (indented by two)."""
    body = example.body
    if example.kind == "prompts":
        chunks = re.split(r"^(?=prompt\s*:)", body, flags=re.MULTILINE)
        forms = [chunk for chunk in chunks if chunk.strip().startswith("prompt")]
        nodes = ""
        for index, form in enumerate(forms):
            following = f"prompt_{index + 1}" if index + 1 < len(forms) else _END
            nodes += f"prompt_{index}:\n  type: say\n  next: {following}\n"
            nodes += _indented(form, 2)
        return _indented(nodes, 2)
    if example.kind == "nodes" and re.match(r"^nodes\s*:", body):
        return body.split("\n", 1)[1]
    if example.kind == "nodes":
        return _indented(body, 2)
    return ""


def _minimal_flow(example: Example, entries: list[str], stubs: set[str], slots: set[str]) -> str:
    commands = example.body if example.kind == "commands" else ""
    choices = "".join(
        f"      - {{intent: example_{index}, keywords: [example{index}], next: {target}}}\n"
        for index, target in enumerate(entries or [_END])
    )
    stub_nodes = "".join(f"  {stub}: {{type: hangup}}\n" for stub in sorted(stubs))
    # A fragment written per language (`en-US: …` keys) needs a flow declaring its languages,
    # and the menu in front of it then speaks each of them too.
    tags = set(_LANGUAGE_KEY.findall(example.body))
    declared = ["zh-CN", *sorted(tags - {"zh-CN"})]
    spoken = f"languages: [{', '.join(declared)}]\n" if tags else "language: zh-CN\n"
    menu_prompt = (
        "{" + ", ".join(f"{tag}: 请选择。" for tag in declared) + "}" if tags else "请选择。"
    )
    return (
        f'flow: example\nversion: "1"\n{spoken}timezone: Asia/Shanghai\n'
        f"start: {_ENTRY}\ndefaults:\n  on_max_attempts: {_END}\n"
        + (f"slots: [{', '.join(sorted(slots))}]\n" if slots else "")
        + commands
        + f"nodes:\n  {_ENTRY}:\n    type: menu\n    prompt: {menu_prompt}\n    choices:\n{choices}"
        + f"  {_END}: {{type: hangup}}\n"
        + _fragment_nodes(example)
        + stub_nodes
    )


def _completed_outline(body: str, stubs: set[str], slots: set[str]) -> str:
    """A flow outline with its left-out nodes stubbed and its unfilled slots declared."""
    text = body
    if slots:
        text = f"slots: [{', '.join(sorted(slots))}]\n" + text
    return text + "".join(f"  {stub}: {{type: hangup}}\n" for stub in sorted(stubs))


def _roots(text: str, fragment: set[str]) -> list[str]:
    """The fragment's nodes no other fragment node leads to (its first node if all are led to),
    in file order."""
    flow = parse_flow(text, "example.yaml", parse_subflows(_flow_library()))
    led_to = {
        edge.target
        for node_id in fragment
        for edge in node_edges(flow, flow.nodes[node_id])
        if edge.source != edge.target
    }
    ordered = [node_id for node_id in flow.nodes if node_id in fragment]
    return [n for n in ordered if n not in led_to] or ordered[:1]


def _flow_library() -> dict[str, str]:
    texts = {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted((DEMO_FLOWS / "subflows").glob("*.yaml"))
    }
    guide = _guide_subflows()
    ids = set(parse_subflows(guide)) if guide else set()
    demo = {name: text for name, text in texts.items() if Path(name).stem not in ids}
    return demo | guide


def _check(directory: Path, build: object) -> list[Finding]:
    """Writes the flow `build(stubs, slots)` makes, stubbing what the loader finds missing,
    and returns the findings of `dialogue validate --strict` on the directory."""
    assert callable(build)
    stubs: set[str] = set()
    slots: set[str] = set()
    findings: list[Finding] = []
    for _ in range(_MAX_ROUNDS):
        (directory / "example.yaml").write_text(build(stubs, slots), encoding="utf-8")
        _, findings = check_directory(directory)
        missing_nodes = {m for f in findings for m in _UNKNOWN_NODE.findall(f.message)}
        missing_slots = {m for f in findings for m in _UNKNOWN_PLACEHOLDER.findall(f.message)}
        if not (missing_nodes - stubs or missing_slots - slots):
            # A stub only an escalation or a default names may be unreachable in a fragment
            # without listening nodes: that says nothing about the fragment.
            return [
                f
                for f in findings
                if not (f.message.startswith("unreachable") and f.where[6:-1] in stubs)
            ]
        stubs |= missing_nodes
        slots |= missing_slots
    return findings


def _check_fragment(example: Example, directory: Path) -> list[Finding]:
    data = yaml.safe_load(
        example.body if example.kind != "prompts" else "{}"
    )  # the fragment's own node ids
    if example.kind == "nodes":
        nodes = data.get("nodes", data) if isinstance(data, dict) else {}
        fragment = {str(node_id) for node_id in nodes}
    elif example.kind == "prompts":
        fragment = {"prompt_0"}
    else:
        fragment = set()
    entries = sorted(fragment)

    def build(stubs: set[str], slots: set[str]) -> str:
        return _minimal_flow(example, entries, stubs, slots)

    findings = _check(directory, build)
    if fragment and not any(f.severity == "error" for f in findings):
        # Enter only where the fragment starts, so what it reads is judged on its own paths.
        text = (directory / "example.yaml").read_text(encoding="utf-8")
        entries = _roots(text, fragment)
        findings = _check(directory, build)
    return findings


def test_every_yaml_block_of_the_guides_has_a_kind() -> None:
    assert _CHECKED, "no examples found"
    unknown = [
        e.where for e in _EXAMPLES if e.kind is None or (e.kind not in (*KINDS, "not checked"))
    ]
    assert not unknown, (
        f"```yaml blocks of no known kind at {', '.join(unknown)}: write "
        f"'<!-- example: KIND -->' ({', '.join(KINDS)}) or "
        f"'<!-- example: not checked, WHY -->' on the line before the block"
    )
    unexplained = [e.where for e in _EXAMPLES if e.kind == "not checked" and not e.why]
    assert not unexplained, f"say why these are not checked: {', '.join(unexplained)}"


def test_the_guides_say_how_their_examples_are_checked() -> None:
    guide = (REPO_ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    assert "tests/docs/test_examples.py" in guide.split("\n## ", 1)[0]


@pytest.mark.parametrize("example", _CHECKED, ids=[e.where for e in _CHECKED])
def test_an_example_passes_validate_strict(example: Example, tmp_path: Path) -> None:
    directory = _flows_dir(tmp_path)
    if example.kind == "flow" and _ELIDED not in example.body:
        (directory / "example.yaml").write_text(example.body, encoding="utf-8")
        _, findings = check_directory(directory)
    elif example.kind == "flow":
        findings = _check(
            directory, lambda stubs, slots: _completed_outline(example.body, stubs, slots)
        )
    elif example.kind == "subflow":
        subflow = next(iter(parse_subflows({"example.yaml": example.body}).values()))
        outcomes = "".join(
            f", {outcome}: {_END}" for outcome in sorted(subflow.outcomes) if outcome != "done"
        )
        (directory / "example.yaml").write_text(
            'flow: example\nversion: "1"\nstart: use\n'
            f"defaults: {{on_max_attempts: {_END}}}\nnodes:\n"
            f"  use: {{type: subflow, flow: {subflow.id}, next: {_END}, outcomes: {{{outcomes[2:]}}}}}\n"
            f"  {_END}: {{type: hangup}}\n",
            encoding="utf-8",
        )
        _, findings = check_directory(directory)
    elif example.kind == "routing":
        for path in DEMO_FLOWS.glob("*.yaml"):
            if path.name != "routing.yaml":
                shutil.copy(path, directory / path.name)
        (directory / "routing.yaml").write_text(example.body, encoding="utf-8")
        _, findings = check_directory(directory)
    else:
        findings = _check_fragment(example, directory)
    assert not findings, (
        f"{example.where}: the ```yaml block ({example.kind}) fails "
        f"`dialogue validate --strict`:\n{_problems(findings)}\n"
        + (
            f"as embedded:\n{(directory / 'example.yaml').read_text(encoding='utf-8')}"
            if example.kind not in ("flow", "routing")
            else ""
        )
    )


_WRONG_FRAGMENTS = {
    "dead end": (
        "hold: {type: say, prompt: 请稍候, wait_for_playback: true, next: pause}\n"
        "pause: {type: wait, duration_ms: 1000, next: hold}\n"
    ),
    "unknown field 'nxet'": "say_it: {type: say, prompt: 您好, nxet: bye}\n",
    "reads slot 'name'": (
        "greet: {type: say, prompt: '您好{name}', next: ask}\n"
        "ask: {type: collect, slot: name, slot_type: text, prompt: 请说, next: bye}\n"
    ),
}


@pytest.mark.parametrize("problem", _WRONG_FRAGMENTS)
def test_a_fragment_that_is_wrong_fails(problem: str, tmp_path: Path) -> None:
    example = Example("guide.md", 1, _WRONG_FRAGMENTS[problem], "nodes")
    findings = _check_fragment(example, _flows_dir(tmp_path))
    assert any(problem in finding.message for finding in findings), _problems(findings)
