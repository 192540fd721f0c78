"""What the tools share: finding a flow, driving the engine, describing decisions, the flow graph.

Only the engine's public surface is used (the flow model, `loader`, `catalog`, `decide` and
`resume`, and the server's hook client), so the tools run flows exactly as the server does. A node
kind added to the engine after this module is read generically (its node-id fields become
edges) instead of failing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from dialogue.v1 import dialogue_pb2 as pb
from server.config import DEMO_FLOWS
from server.engine.catalog import Catalog, load_catalog
from server.engine.flow import (
    TRANSFER_FAILURES,
    AiGatherNode,
    Branch,
    Collect,
    Escalation,
    Flow,
    Fulfillment,
    HangUp,
    HoursNode,
    Menu,
    Node,
    NodeKind,
    PromptSpec,
    RecordNode,
    Say,
    SetNode,
    Transfer,
    WaitNode,
)
from server.engine.flowfile import SUBFLOW_SEPARATOR, FlowError, LineList, LineMap, load_flow_file
from server.engine.flowfile.yaml_lines import parse_yaml_value
from server.engine.hooks import HookCall, HookResult, Outcome
from server.engine.interpreter import Decision, FlowRuntimeError, run_turn
from server.engine.state import CallState
from server.hook_client import HookClient

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Slots an edge may fill without saying which (a hook's answer can fill any).
ANY_SLOT = "*"

# Answers a hook: at once (given answers), or by performing it (`call_hook`).
HookHandler = Callable[[HookCall], HookResult | Awaitable[HookResult]]


class ToolError(Exception):
    """A problem the user must fix before a tool can run (exit status 2)."""


# -- finding flows ----------------------------------------------------------------------------


def default_flows_dir() -> Path:
    """The flows directory the server would use: $DIALOGUE_FLOWS, else the demo flows."""
    return Path(os.environ.get("DIALOGUE_FLOWS", str(DEMO_FLOWS)))


def display_path(path: str) -> str:
    """A path as short as it can be said: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return path


def flow_problems(exc: FlowError) -> str:
    return "\n".join(str(problem) for problem in exc.problems)


def load_catalog_or_fail(directory: Path) -> Catalog:
    try:
        return load_catalog(directory)
    except FlowError as exc:
        raise ToolError(f"cannot load the flows in {directory}:\n{flow_problems(exc)}") from exc
    except (OSError, UnicodeError) as exc:
        raise ToolError(f"cannot read the flows in {directory}: {exc}") from exc


def is_flow_file(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) or os.sep in spec or Path(spec).is_file()


def load_flow(spec: str, flows_dir: Path) -> Flow:
    """A flow by file path, or by flow id or routed flow selector in `flows_dir`.

    Raises:
        ToolError: the file or id is unknown, or the flow (or its directory) is invalid.
    """
    if is_flow_file(spec):
        path = Path(spec)
        if not path.is_file():
            raise ToolError(f"no flow file {spec}")
        try:
            return load_flow_file(path)
        except FlowError as exc:
            raise ToolError(f"invalid flow {spec}:\n{flow_problems(exc)}") from exc
        except (OSError, UnicodeError) as exc:
            raise ToolError(f"cannot read {spec}: {exc}") from exc
    catalog = load_catalog_or_fail(flows_dir)
    # An unknown id must not silently fall back to the default route: name the choices instead.
    flow_id = spec if spec in catalog.flows else catalog.routes.get(spec)
    if flow_id is None:
        known = ", ".join(sorted(catalog.flows))
        raise ToolError(
            f"no flow '{spec}' in {flows_dir} (flow ids: {known}; or give a flow file path)"
        )
    return catalog.flows[flow_id]


# -- driving the engine -----------------------------------------------------------------------

EVENT_FIELDS = tuple(
    field.name for field in pb.DecideNextActionRequest.DESCRIPTOR.oneofs_by_name["event"].fields
)
ACTION_FIELDS = tuple(
    field.name for field in pb.DecideNextActionResponse.DESCRIPTOR.oneofs_by_name["action"].fields
)


DEFAULT_CALLER = "+8613800138000"
DEFAULT_CALLEE = "10086"


@dataclass(frozen=True, slots=True)
class CallInfo:
    """The facts of a simulated call that every request carries."""

    call_id: str = "local-call"
    caller: str = DEFAULT_CALLER
    callee: str = DEFAULT_CALLEE
    selector: str = ""
    direction: pb.CallDirection.ValueType = pb.CALL_DIRECTION_INBOUND
    capabilities: tuple[pb.Capability.ValueType, ...] = ()


def make_request(
    call: CallInfo,
    request_id: str,
    event: str,
    payload: dict[str, Any] | None = None,
    parameters: dict[str, str] | None = None,
    *,
    occurred_at: datetime | None = None,
    queue_status: dict[str, int] | None = None,
) -> pb.DecideNextActionRequest:
    """A request for one event, e.g. `make_request(call, "t1", "digits_entered", {"digits": "1"})`.

    `occurred_at` (timezone-aware) is the call's time for business hours and relative dates;
    `queue_status` the queue figures the request reports (QueueStatus field → number).

    Raises:
        ToolError: the event name or its payload is not valid proto JSON for that event.
    """
    if event not in EVENT_FIELDS:
        raise ToolError(f"unknown event '{event}' (expected one of: {', '.join(EVENT_FIELDS)})")
    request = pb.DecideNextActionRequest(request_id=request_id)
    request.call.call_id = call.call_id
    request.call.caller = call.caller
    request.call.callee = call.callee
    request.call.flow_selector = call.selector
    request.call.platform = pb.PLATFORM_OTHER
    request.call.direction = call.direction
    request.call.capabilities.extend(call.capabilities)
    request.call_data.parameters.update(parameters or {})
    if occurred_at is not None:
        request.occurred_at.FromDatetime(occurred_at)
    if queue_status is not None:
        try:
            json_format.ParseDict(queue_status, request.queue_status)
        except json_format.ParseError as exc:
            raise ToolError(f"invalid queue status {queue_status!r}: {exc}") from exc
    try:
        json_format.ParseDict(payload or {}, getattr(request, event))
    except json_format.ParseError as exc:
        raise ToolError(f"invalid {event} payload {payload!r}: {exc}") from exc
    getattr(request, event).SetInParent()
    return request


class Conversation:
    """One simulated call against one flow: feeds events to `decide` and keeps the state.

    Attributes:
        hooks: Answers the HTTP hooks a turn reaches (fulfillment, external understanding);
            None makes reaching one an error.
        now: Gives the time `send` puts on every event (None: events carry no time).
        hook_log: The hooks the last turn called and what came of each.
    """

    def __init__(
        self,
        flow: Flow,
        call: CallInfo | None = None,
        *,
        hooks: HookHandler | None = None,
        now: Callable[[], datetime | None] | None = None,
    ) -> None:
        self.flow = flow
        self.call = call or CallInfo()
        self.hooks = hooks
        self.now = now
        self.state: CallState | None = None
        self.sent = 0
        self.last_request: pb.DecideNextActionRequest | None = None
        self.hook_log: list[tuple[HookCall, HookResult]] = []

    def send(
        self,
        event: str,
        payload: dict[str, Any] | None = None,
        parameters: dict[str, str] | None = None,
        *,
        occurred_at: datetime | None = None,
        hooks: HookHandler | None = None,
        queue_status: dict[str, int] | None = None,
    ) -> Decision:
        """Applies one event and returns the decision.

        Raises:
            ToolError: the event is malformed, the flow cannot run (FlowRuntimeError), or the
                turn reached a hook nobody answers.
        """
        self.sent += 1
        when = occurred_at or (self.now() if self.now is not None else None)
        request = make_request(
            self.call,
            f"t{self.sent}",
            event,
            payload,
            parameters,
            occurred_at=when,
            queue_status=queue_status,
        )
        return self.apply(request, hooks)

    def apply(
        self,
        request: pb.DecideNextActionRequest,
        hooks: HookHandler | None = None,
        now: datetime | None = None,
    ) -> Decision:
        """Applies one request as it is; `now` is the time for a request without `occurred_at`."""
        self.last_request = request
        self.hook_log = []
        handler = hooks or self.hooks

        async def answer(call: HookCall) -> HookResult:
            if handler is None:
                raise ToolError(
                    f"the turn reached the {call.kind} hook of node '{call.node}' "
                    f"(POST {call.url}), and no result is given for it"
                )
            given = handler(call)
            result = await given if inspect.isawaitable(given) else given
            self.hook_log.append((call, result))
            return result

        try:
            decision = asyncio.run(run_turn(self.flow, self.state, request, answer, now=now))
        except FlowRuntimeError as exc:
            raise ToolError(f"the flow cannot run: {exc}") from exc
        self.state = decision.state
        return decision


async def call_hook(call: HookCall) -> HookResult:
    """Performs a hook as the server does (`server.hook_client.HookClient`), within its deadline."""
    client = HookClient()
    try:
        return await client.call(call, call.timeout_ms / 1000)
    finally:
        await client.aclose()


def fixed_hook(outcome: Outcome, detail: str) -> HookHandler:
    """Answers every hook alike without calling it (to try a flow's error and timeout paths)."""
    return lambda call: HookResult(outcome, detail=detail)


# -- describing decisions ---------------------------------------------------------------------


def event_text(request: pb.DecideNextActionRequest) -> str:
    """An event for people: its name, with what was said or pressed."""
    event = request.WhichOneof("event") or "no event"
    if event == "speech_recognized":
        return f"{event} {request.speech_recognized.text!r}"
    if event == "digits_entered":
        return f"{event} {request.digits_entered.digits!r}"
    return event


def action_name(response: pb.DecideNextActionResponse) -> str:
    return response.WhichOneof("action") or "none"


def action_message(response: pb.DecideNextActionResponse) -> Any:
    name = response.WhichOneof("action")
    return getattr(response, name) if name else None


def prompt_items(response: pb.DecideNextActionResponse) -> list[str]:
    """The prompts of a response as text: TTS text as rendered, audio as [audio:NAME]/[url:URL]."""
    message = action_message(response)
    if message is None or not hasattr(message, "prompts"):
        return []
    texts: list[str] = []
    for item in message.prompts.items:
        kind = item.WhichOneof("content")
        if kind == "tts":
            texts.append(item.tts.text)
        elif item.audio.WhichOneof("source") == "url":
            texts.append(f"[url:{item.audio.url}]")
        else:
            texts.append(f"[audio:{item.audio.media_name}]")
    return texts


def transfer_target(transfer: pb.Transfer) -> str:
    kind = transfer.WhichOneof("target") or "none"
    if kind == "skill_queue":
        queue = transfer.skill_queue
        named = queue.WhichOneof("queue") or "access_code"
        return f"skill queue {getattr(queue, named)}" + (" (by name)" if named == "name" else "")
    return f"{kind.replace('_', ' ')} {getattr(transfer, kind, '')}".strip()


def action_details(response: pb.DecideNextActionResponse) -> str:
    """One line on what the platform is told to do besides playing prompts, or ""."""
    name = action_name(response)
    if name == "play_and_listen":
        listen = response.play_and_listen
        parts = []
        if listen.HasField("digits"):
            digits = listen.digits
            count = (
                f"{digits.min_digits}"
                if digits.min_digits == digits.max_digits
                else f"{digits.min_digits}-{digits.max_digits}"
            )
            keys = f" of {digits.valid_keys}" if digits.valid_keys else ""
            end = f", ended by {digits.terminator}" if digits.terminator else ""
            parts.append(f"{count} key{'s' if count != '1' else ''}{keys}{end}")
        if listen.HasField("speech"):
            hints = listen.speech.hints
            shown = ", ".join(hints[:6]) + (", …" if len(hints) > 6 else "")
            parts.append(
                f"speech {listen.speech.language}" + (f" (hints: {shown})" if hints else "")
            )
        return "listen: " + ("; ".join(parts) or "nothing")
    if name == "play_and_transfer":
        transfer = response.play_and_transfer.transfer
        mode = "parallel" if transfer.mode == pb.TRANSFER_MODE_PARALLEL else "blind"
        return f"transfer: {transfer_target(transfer)} ({mode})"
    if name == "play_and_hang_up":
        failed = response.play_and_hang_up.reason == pb.HANG_UP_REASON_FAILED
        return f"hang up ({'failed' if failed else 'completed'})"
    if name == "record":
        record = response.record
        return f"record: up to {record.max_duration_ms} ms" + (
            f", stop key {record.stop_key}" if record.stop_key else ""
        )
    if name == "wait":
        return f"wait: {response.wait.duration_ms} ms"
    if name == "ai_gather":
        return f"AI gather: {response.ai_gather.greeting}"
    return ""


def describe(response: pb.DecideNextActionResponse) -> list[str]:
    """A decision as lines for people: action, node, intent, note, prompts and what follows."""
    diagnostics = response.diagnostics
    head = f"[{action_name(response)}] node {diagnostics.node_id or '-'}"
    if diagnostics.matched_intent:
        head += f" · intent {diagnostics.matched_intent}"
    if response.dialogue_over:
        head += " · dialogue over"
    lines = [head]
    lines += [f"  say: {text}" for text in prompt_items(response)]
    details = action_details(response)
    if details:
        lines.append(f"  {details}")
    if diagnostics.note:
        lines.append(f"  note: {diagnostics.note}")
    return lines


def describe_state(state: CallState | None) -> str:
    if state is None:
        return "state: (call not started)"
    slots = ", ".join(f"{k}={v}" for k, v in sorted(state.slots.items())) or "-"
    counters = ", ".join(f"{k}={v}" for k, v in sorted(state.counters.items())) or "-"
    params = ", ".join(f"{k}={v}" for k, v in sorted(state.params.items())) or "-"
    return (
        f"state: node {state.node or '-'} · turn {state.turn} · slots {slots} · "
        f"counters {counters} · params {params}"
        # Only a call that switched language says so (the default is the flow's).
        + (f" · language {state.language}" if state.language else "")
        + (" · over" if state.over else "")
    )


# How a tool's input names a transfer's end (`transfer: busy` in a conversation test, `/transfer
# busy` in chat): the TransferFinished payload, as JSON. A failure reason is a failed transfer
# that says why.
TRANSFER_RESULTS: dict[str, dict[str, str]] = {
    "succeeded": {"outcome": "TRANSFER_OUTCOME_SUCCEEDED"},
    "failed": {"outcome": "TRANSFER_OUTCOME_FAILED"},
    **{
        failure: {
            "outcome": "TRANSFER_OUTCOME_FAILED",
            "failure": f"TRANSFER_FAILURE_{failure.upper()}",
        }
        for failure in TRANSFER_FAILURES
    },
}


# -- the flow as a graph ----------------------------------------------------------------------


def kind_of(node: object) -> str:
    """The node's `type:` as written in YAML; a kind unknown to the model gets its snake-cased
    class name."""
    if isinstance(node, NodeKind):
        return node.kind
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(node).__name__).lower()
    return name.removesuffix("_node")


def inlined_jump(node: object) -> str:
    """ "subflow" or "return" for the jumps the loader made of a flow's `subflow` nodes and its
    subflows' `return` nodes (server/engine/flowfile/subflows.py), else "".

    Inlining turns both into branches without cases; which one is told by where they jump,
    since authors cannot name inlined ids: a `subflow` node X jumps into its own copy (X.…),
    a `return` node out of the copy it is in.
    """
    if not isinstance(node, Branch) or node.cases:
        return ""
    if node.default.startswith(node.id + SUBFLOW_SEPARATOR):
        return "subflow"
    copy, separator, _ = node.id.rpartition(SUBFLOW_SEPARATOR)
    if separator and not node.default.startswith(copy + SUBFLOW_SEPARATOR):
        return "return"
    return ""


def is_known_kind(node: object) -> bool:
    return isinstance(node, NodeKind)


def is_listening(node: object) -> bool:
    return isinstance(node, NodeKind) and node.listens


def may_end(node: object) -> bool:
    """Whether the dialogue can end at this node: hang-up, a successful transfer, or a kind we
    do not know (assumed able to, so that checks never fail a flow for a kind they cannot read)."""
    return not isinstance(node, NodeKind) or node.may_end


def parse_time(text: str) -> datetime:
    """An ISO 8601 date-time with its UTC offset ("2026-11-23T10:00:00+08:00").

    Raises:
        ToolError: not such a date-time, or without an offset (the call's time must be exact).
    """
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ToolError(f"time {text!r} is not an ISO 8601 date-time: {exc}") from exc
    if when.tzinfo is None:
        raise ToolError(f"time {text!r} has no UTC offset (e.g. {text}+08:00)")
    return when


def hears_commands(node: object) -> bool:
    """Nodes where the call waits and global commands are checked (docs/flows.md, section 9)."""
    return isinstance(node, NodeKind) and node.hears_commands()


@dataclass(frozen=True, slots=True)
class Edge:
    """A way the call can move from one node to another.

    Attributes:
        source: The node the call leaves ("" for the global commands, which apply anywhere).
        target: The node it reaches.
        label: What moves it, for people ("bill [1]", "no-input ×3 / no-match ×3").
        kind: next, choice, case, default, failure, escalation, budget or command.
        sets: Slots the move may fill (a collect's `next` fills its slot).
    """

    source: str
    target: str
    label: str
    kind: str
    sets: frozenset[str] = frozenset()


def escalation_edges(flow: Flow, node_id: str, escalation: Escalation) -> list[Edge]:
    """Where the limits lead: one edge when both kinds go to the same node, else one each."""
    defaults = flow.defaults
    no_input = f"no-input ×{escalation.max_no_input or defaults.max_no_input}"
    no_match = f"no-match ×{escalation.max_no_match or defaults.max_no_match}"
    on_no_input = escalation.leave_to("no_input", defaults)
    on_no_match = escalation.leave_to("no_match", defaults)
    if on_no_input == on_no_match:
        return [Edge(node_id, on_no_input, f"{no_input} / {no_match}", "escalation")]
    return [
        Edge(node_id, on_no_input, no_input, "escalation"),
        Edge(node_id, on_no_match, no_match, "escalation"),
    ]


def _choice_label(intent: str, key: str, keywords: tuple[str, ...]) -> str:
    label = intent + (f" [{key}]" if key else "")
    if keywords:
        label += " " + "/".join(keywords[:3]) + ("/…" if len(keywords) > 3 else "")
    return label


def condition_text(branch: Branch, index: int) -> str:
    parts = []
    for condition in branch.cases[index].conditions:
        values = ",".join(condition.values)
        op = {"equals": "=", "not_equals": "≠", "one_of": "∈"}.get(condition.op)
        parts.append(
            f"{condition.slot} {op} {values}" if op else f"{condition.slot} {condition.op}"
        )
    return " and ".join(parts) or "always"


def node_edges(flow: Flow, node: Node) -> list[Edge]:
    """The moves out of one node (not the global commands and failure budget)."""
    nid = node.id
    if isinstance(node, Say):
        return [Edge(nid, node.next, "after playback" if node.wait_for_playback else "", "next")]
    # An external understanding service may fill any slot along with its answer.
    understood = (
        frozenset({ANY_SLOT})
        if flow.nlu is not None and getattr(node, "nlu", False)
        else frozenset()
    )
    if isinstance(node, Menu):
        return [
            Edge(nid, c.next, _choice_label(c.intent, c.key, c.keywords), "choice", understood)
            for c in node.choices
        ] + escalation_edges(flow, nid, node.escalation)
    if isinstance(node, Collect):
        return [
            Edge(
                nid, node.next, f"{node.slot} filled", "next", frozenset({node.slot}) | understood
            ),
            *escalation_edges(flow, nid, node.escalation),
        ]
    if isinstance(node, Branch):
        return [
            Edge(nid, case.next, condition_text(node, index), "case")
            for index, case in enumerate(node.cases)
        ] + [Edge(nid, node.default, "default", "default")]
    if isinstance(node, Transfer):
        specific = node.failure_targets()
        return [
            Edge(nid, target, f"transfer failed: {failure.replace('_', ' ')}", "failure")
            for failure, target in specific
        ] + [
            Edge(
                nid, node.on_failure, "transfer failed" + (", other" if specific else ""), "failure"
            )
        ]
    if isinstance(node, HangUp):
        return []
    if isinstance(node, RecordNode):
        return [Edge(nid, node.next, "recorded", "next", frozenset({node.slot}))]
    if isinstance(node, WaitNode):
        return [Edge(nid, node.next, f"after {node.duration_ms} ms", "next")]
    if isinstance(node, AiGatherNode):
        properties = node.schema.get("properties")
        gathered = frozenset(str(p) for p in properties) if isinstance(properties, dict) else None
        return [
            Edge(nid, node.next, "complete", "next", gathered or frozenset()),
            Edge(nid, node.on_failure, "incomplete / failed", "failure", gathered or frozenset()),
        ]
    if isinstance(node, SetNode):
        assigned = frozenset(n for n, _ in node.values if not n.startswith("params."))
        return [Edge(nid, node.next, "", "next", assigned)]
    if isinstance(node, Fulfillment):
        # The service's answer may fill any slot.
        answered = frozenset({ANY_SLOT})
        return [
            Edge(nid, node.on_success, "ok", "next", answered),
            Edge(nid, node.on_error, "error", "failure"),
            Edge(nid, node.on_timeout, "timeout", "failure"),
        ]
    if isinstance(node, HoursNode):
        return [
            Edge(nid, target, label, "case")
            for label, target in (
                ("open", node.open),
                ("closed", node.closed),
                ("holiday", node.holiday),
            )
            if target
        ]
    return list(_generic_edges(flow, nid, node, ""))


def _generic_edges(flow: Flow, nid: str, value: object, path: str) -> Iterator[Edge]:
    """Edges of a node kind added after these tools: every field naming a node is an edge."""
    if isinstance(value, Escalation):
        yield from escalation_edges(flow, nid, value)
        return
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    slot = getattr(value, "slot", "")
    for field in dataclasses.fields(value):
        if field.name == "id":
            continue
        item = getattr(value, field.name)
        label = f"{path}.{field.name}" if path else field.name
        if isinstance(item, str) and item in flow.nodes:
            sets = (
                frozenset({slot})
                if isinstance(slot, str) and slot and field.name == "next"
                else frozenset()
            )
            yield Edge(nid, item, label, "next", sets)
        elif isinstance(item, tuple | list):
            for index, element in enumerate(item):
                if isinstance(element, str) and element in flow.nodes:
                    yield Edge(nid, element, f"{label}[{index}]", "next")
                else:
                    yield from _generic_edges(flow, nid, element, f"{label}[{index}]")
        else:
            yield from _generic_edges(flow, nid, item, label)


def command_edges(flow: Flow) -> list[Edge]:
    """Global commands with a goto: from anywhere the call listens (source "")."""
    return [
        Edge(
            "",
            command.goto,
            _choice_label(command.intent, command.key, command.keywords),
            "command",
        )
        for command in flow.commands
        if command.goto and command.goto in flow.nodes
    ]


def all_edges(flow: Flow) -> list[Edge]:
    """Every move, with commands and the failure budget expanded to the nodes they apply at."""
    edges = [edge for node in flow.nodes.values() for edge in node_edges(flow, node)]
    defaults = flow.defaults
    budget = defaults.on_failure_budget if defaults.max_failures else ""
    for node in flow.nodes.values():
        if hears_commands(node):
            edges += [Edge(node.id, e.target, e.label, "command") for e in command_edges(flow)]
        if budget and is_listening(node):
            edges.append(Edge(node.id, budget, "failure budget", "budget"))
    return [edge for edge in edges if edge.target in flow.nodes]


def prompt_specs(node: object, path: str = "") -> Iterator[tuple[str, PromptSpec]]:
    """Every prompt a node (of any kind) can speak, with its field path ("prompt", "no_input[1]")."""
    if not dataclasses.is_dataclass(node) or isinstance(node, type):
        return
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        name = f"{path}.{field.name}" if path else field.name
        if isinstance(value, Escalation):
            # Escalation fields are written at the node's own level in YAML (`no_input:`).
            yield from prompt_specs(value, path)
        elif isinstance(value, PromptSpec):
            yield name, value
        elif isinstance(value, tuple):
            for index, element in enumerate(value):
                if isinstance(element, PromptSpec):
                    yield f"{name}[{index}]", element
                elif dataclasses.is_dataclass(element):
                    yield from prompt_specs(element, f"{name}[{index}]")
        elif dataclasses.is_dataclass(value):
            yield from prompt_specs(value, name)


def placeholders(spec: PromptSpec) -> list[str]:
    return [name for item in spec.items for name in PLACEHOLDER.findall(item.text)]


# -- where things are in the YAML -------------------------------------------------------------


@dataclass
class SourceMap:
    """Line numbers (1-based) of a flow file's fields, for messages that point at them."""

    top: dict[str, int]
    nodes: dict[str, int]
    node_fields: dict[str, dict[str, int]]
    node_items: dict[str, dict[str, list[int]]]
    defaults: dict[str, int]
    data: dict[str, Any]

    def node_line(self, node_id: str, path: str = "") -> int:
        """The line of a node's field ("prompt"), list entry ("cases[1]"), or the node itself.

        A node the loader inlined from a subflow ("check.ask") is at its subflow node ("check").
        """
        if node_id not in self.nodes and SUBFLOW_SEPARATOR in node_id:
            return self.nodes.get(node_id.split(SUBFLOW_SEPARATOR, 1)[0], 1)
        match = re.match(r"(\w+)(?:\[(\d+)\])?", path)
        if match:
            field, index = match.group(1), match.group(2)
            items = self.node_items.get(node_id, {}).get(field, [])
            if index is not None and int(index) < len(items):
                return items[int(index)]
            line = self.node_fields.get(node_id, {}).get(field)
            if line:
                return line
        return self.nodes.get(node_id, 1)


def source_map(text: str, name: str = "<flow>") -> SourceMap:
    """Line numbers of YAML text the loader accepted, read by the loader's own YAML reader
    (so any file the server loads can be mapped)."""
    data = load_yaml_lines(text, name)
    root = data if isinstance(data, LineMap) else LineMap()
    nodes_raw = root.get("nodes")
    nodes = nodes_raw if isinstance(nodes_raw, LineMap) else LineMap()
    node_fields: dict[str, dict[str, int]] = {}
    node_items: dict[str, dict[str, list[int]]] = {}
    for node_id, body in nodes.items():
        if isinstance(body, LineMap):
            node_fields[node_id] = dict(body.key_lines)
            node_items[node_id] = {
                key: list(value.item_lines)
                for key, value in body.items()
                if isinstance(value, LineList)
            }
    defaults = root.get("defaults")
    return SourceMap(
        dict(root.key_lines),
        dict(nodes.key_lines),
        node_fields,
        node_items,
        dict(defaults.key_lines) if isinstance(defaults, LineMap) else {},
        root,
    )


def load_yaml_lines(text: str, name: str) -> Any:
    """Parses YAML into LineMap/LineList/scalars with the loader's reader.

    Raises:
        ToolError: a syntax error or a duplicate key, as `name:line: message`.
    """
    try:
        return parse_yaml_value(text, name)
    except FlowError as exc:
        raise ToolError(flow_problems(exc)) from exc
