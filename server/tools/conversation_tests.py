"""`dialogue test PATH…`: conversation tests — scripted calls with expected decisions, in YAML.

A test file names a flow and lists cases; a case is a call, turn by turn: the caller's input and
what the engine must answer. The engine runs in-process. Each case is reported as `PASS name`
or `FAIL name: turn N: what differs`, then `N passed, M failed`; the exit status is 1 if any
case failed or any test file is broken. The YAML schema is documented in docs/tools.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from google.protobuf import json_format

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.catalog import Catalog, UnknownFlowError
from server.engine.flow import Flow
from server.engine.flowfile import FlowError, LineList, LineMap, load_flow_file
from server.engine.hooks import HookCall, HookResult, Outcome
from server.engine.interpreter import Decision
from server.tools.common import (
    ACTION_FIELDS,
    EVENT_FIELDS,
    TRANSFER_RESULTS,
    CallInfo,
    Conversation,
    HookHandler,
    ToolError,
    action_name,
    default_flows_dir,
    describe,
    event_text,
    flow_problems,
    load_catalog_or_fail,
    load_yaml_lines,
    parse_time,
    prompt_items,
)

_FILE_KEYS = ("flow", "flow_file", "selector", "description", "call", "cases")
_CALL_KEYS = ("caller", "callee", "direction", "params", "time", "capabilities")
# `capabilities: [queue_status, voice_assistant]` names pb.Capability members.
_CAPABILITIES = {
    "queue_status": pb.CAPABILITY_QUEUE_STATUS,
    "voice_assistant": pb.CAPABILITY_VOICE_ASSISTANT,
}
_QUEUE_FIGURES = ("position", "agents_online", "agents_idle", "estimated_wait_ms")
_CASE_KEYS = ("name", "description", "call", "turns")
_FLAG_INPUTS = {
    "start": "call_started",
    "silence": "no_input",
    "no_match": "no_match",
    "played": "playback_finished",
    "hangup": "call_ended",
}
_INPUTS = (*_FLAG_INPUTS, "say", "keys", "recorded", "transfer", "barge_in", "queue", "event")
_TURN_KEYS = (*_INPUTS, "params", "time", "hooks", "expect")
_EXPECT_KEYS = (
    "action",
    "node",
    "intent",
    "say_contains",
    "say_not_contains",
    "prompts",
    "note_contains",
    "slots",
    "counters",
    "dialogue_over",
    "response",
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "test",
        help="run conversation tests (YAML) against flows, in-process",
        description=(
            "Run conversation tests: YAML files of scripted calls with the decisions expected "
            "at each turn (schema: docs/tools.md). Directories are searched for *.yaml/*.yml "
            "test files, not recursively; a flows directory (one holding flows) means the tests "
            "in its tests/, against its flows. Prints PASS/FAIL per case and 'N passed, M failed'; "
            "exit status 1 if any case failed or a test file is broken."
        ),
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="test file or directory"
    )
    parser.add_argument(
        "--flows",
        type=Path,
        default=None,
        help="directory the tests' `flow:` ids are looked up in (default: the flows directory "
        "given as PATH, else $DIALOGUE_FLOWS, else the demo flows)",
    )
    parser.add_argument(
        "-k", dest="select", default="", metavar="TEXT", help="only cases whose name contains TEXT"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show every turn's decision")
    parser.set_defaults(run=run)


class SchemaError(Exception):
    """A test file does not follow the schema; the message starts with `file:line:`."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One caller event of a case and what must come back."""

    number: int
    line: int
    event: str
    payload: dict[str, Any]
    params: dict[str, str]
    expect: dict[str, Any]
    time: datetime | None = None
    hooks: tuple[HookResult, ...] | None = None
    queue_status: dict[str, int] | None = None


@dataclass(frozen=True, slots=True)
class CallSetup:
    """What every event of a case carries: the call's facts, parameters and time."""

    call: CallInfo
    params: dict[str, str]
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Case:
    """One scripted call."""

    name: str
    line: int
    setup: CallSetup
    turns: tuple[Turn, ...]


@dataclass
class Suite:
    """A test file: its flow and cases."""

    path: Path
    flow: Flow
    cases: list[Case] = field(default_factory=list)


# -- reading test files -----------------------------------------------------------------------


class _Reader:
    def __init__(self, path: Path, flows_dir: Path, catalogs: dict[Path, Catalog]) -> None:
        self.path = path
        self.flows_dir = flows_dir
        self.catalogs = catalogs

    def fail(self, line: int, message: str) -> SchemaError:
        return SchemaError(f"{self.path}:{line}: {message}")

    def mapping(self, value: Any, line: int, where: str, allowed: tuple[str, ...]) -> LineMap:
        if not isinstance(value, LineMap):
            raise self.fail(line, f"{where}: expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    value.key_lines[key],
                    f"{where}: unknown field '{key}' (expected one of: {', '.join(allowed)})",
                )
        return value

    def catalog(self) -> Catalog:
        directory = self.flows_dir.resolve()
        if directory not in self.catalogs:
            self.catalogs[directory] = load_catalog_or_fail(self.flows_dir)
        return self.catalogs[directory]

    def read(self) -> Suite:
        data = load_yaml_lines(self.path.read_text(encoding="utf-8"), str(self.path))
        data = self.mapping(data, 1, "test file", _FILE_KEYS)
        flow = self._flow(data)
        selector = str(data.get("selector") or "")
        base = CallSetup(CallInfo(call_id="test", selector=selector or flow.id), {})
        base = self._call(data.get("call"), data.key_lines.get("call", 1), "call", base)
        raw_cases = data.get("cases")
        if not isinstance(raw_cases, LineList) or not raw_cases:
            raise self.fail(
                data.key_lines.get("cases", data.line), "'cases' must be a non-empty list"
            )
        suite = Suite(self.path, flow)
        names: set[str] = set()
        for index, (raw, line) in enumerate(zip(raw_cases, raw_cases.item_lines, strict=True)):
            case = self._case(raw, line, f"cases[{index}]", base)
            if case.name in names:
                raise self.fail(line, f"cases[{index}]: name '{case.name}' is used twice")
            names.add(case.name)
            suite.cases.append(case)
        return suite

    def _flow(self, data: LineMap) -> Flow:
        line = data.line
        flow_id, flow_file = data.get("flow"), data.get("flow_file")
        selector = data.get("selector")
        if flow_file is not None:
            path = self.path.parent / str(flow_file)
            try:
                return load_flow_file(path)
            except (FlowError, OSError) as exc:
                detail = flow_problems(exc) if isinstance(exc, FlowError) else str(exc)
                raise self.fail(
                    data.key_lines["flow_file"], f"cannot load flow_file {path}: {detail}"
                ) from exc
        if flow_id is None and selector is None:
            raise self.fail(
                line, "expected 'flow: FLOW_ID', 'selector: SELECTOR' or 'flow_file: PATH'"
            )
        try:
            catalog = self.catalog()
        except ToolError as exc:
            raise self.fail(line, str(exc)) from exc
        if flow_id is not None and str(flow_id) not in catalog.flows:
            known = ", ".join(sorted(catalog.flows))
            raise self.fail(
                data.key_lines["flow"],
                f"no flow '{flow_id}' in {self.flows_dir} (flow ids: {known})",
            )
        if selector is None:
            return catalog.flows[str(flow_id)]
        try:
            routed = catalog.resolve(str(selector))
        except UnknownFlowError as exc:
            raise self.fail(data.key_lines["selector"], str(exc)) from exc
        if flow_id is not None and routed.id != str(flow_id):
            raise self.fail(
                data.key_lines["selector"],
                f"selector '{selector}' routes to flow '{routed.id}', not '{flow_id}'",
            )
        return routed

    def _call(self, raw: Any, line: int, where: str, base: CallSetup) -> CallSetup:
        """`base` with what a `call:` mapping changes (its params add to the base's)."""
        if raw is None:
            return base
        raw = self.mapping(raw, line, where, _CALL_KEYS)
        direction = raw.get("direction")
        if direction not in (None, "inbound", "outbound"):
            raise self.fail(
                raw.key_lines["direction"], f"{where}.direction: expected inbound or outbound"
            )
        params = dict(base.params)
        params.update(
            self._params(raw.get("params"), raw.key_lines.get("params", line), f"{where}.params")
        )
        call = base.call
        call = CallInfo(
            call_id=call.call_id,
            caller=str(raw.get("caller", call.caller)),
            callee=str(raw.get("callee", call.callee)),
            selector=call.selector,
            direction=(
                call.direction
                if direction is None
                else pb.CALL_DIRECTION_OUTBOUND
                if direction == "outbound"
                else pb.CALL_DIRECTION_INBOUND
            ),
        )
        time = self._time(raw, where) if "time" in raw else base.time
        if "capabilities" in raw:
            call = dataclasses.replace(
                call, capabilities=self._capabilities(raw["capabilities"], raw, where)
            )
        return CallSetup(call, params, time)

    def _capabilities(
        self, value: Any, raw: LineMap, where: str
    ) -> tuple[pb.Capability.ValueType, ...]:
        names = value if isinstance(value, list) else None
        if names is None or any(name not in _CAPABILITIES for name in names):
            raise self.fail(
                raw.key_lines["capabilities"],
                f"{where}.capabilities: expected a list of: {', '.join(_CAPABILITIES)}",
            )
        return tuple(_CAPABILITIES[name] for name in names)

    def _time(self, raw: LineMap, where: str) -> datetime:
        value, line = raw["time"], raw.key_lines["time"]
        # Unquoted, YAML reads an ISO date-time as a datetime already.
        text = value.isoformat() if isinstance(value, datetime) else str(value)
        try:
            return parse_time(text)
        except ToolError as exc:
            raise self.fail(line, f"{where}.time: {exc}") from exc

    def _hooks(self, raw: Any, line: int, where: str) -> tuple[HookResult, ...]:
        """`[{ok: BODY} | {error: DETAIL} | {timeout: true}, ...]`, in the order hooks are reached."""
        if not isinstance(raw, LineList):
            raise self.fail(line, f"{where}.hooks: expected a list of results")
        results = []
        for index, (entry, entry_line) in enumerate(zip(raw, raw.item_lines, strict=True)):
            if not isinstance(entry, LineMap) or len(entry) != 1:
                raise self.fail(
                    entry_line,
                    f"{where}.hooks[{index}]: expected one of {{ok: ANSWER}}, {{error: DETAIL}}, "
                    "{timeout: true}",
                )
            ((outcome, value),) = entry.items()
            if outcome == "ok" and isinstance(value, dict):
                results.append(HookResult(Outcome.OK, body=_plain(value)))
            elif outcome == "error":
                results.append(HookResult(Outcome.ERROR, detail=str(value or "error")))
            elif outcome == "timeout" and value is True:
                results.append(HookResult(Outcome.TIMEOUT, detail="timed out"))
            else:
                raise self.fail(
                    entry_line,
                    f"{where}.hooks[{index}]: expected one of {{ok: ANSWER-MAPPING}}, "
                    "{error: DETAIL}, {timeout: true}",
                )
        return tuple(results)

    def _params(self, raw: Any, line: int, where: str) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, LineMap):
            raise self.fail(line, f"{where}: expected a mapping of NAME: VALUE")
        return {str(k): str(v) for k, v in raw.items()}

    def _case(self, raw: Any, line: int, where: str, base: CallSetup) -> Case:
        raw = self.mapping(raw, line, where, _CASE_KEYS)
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise self.fail(line, f"{where}: 'name' is missing (expected text)")
        setup = self._call(raw.get("call"), raw.key_lines.get("call", line), f"{where}.call", base)
        turns_raw = raw.get("turns")
        if not isinstance(turns_raw, LineList) or not turns_raw:
            raise self.fail(
                raw.key_lines.get("turns", line), f"case '{name}': 'turns' must be a non-empty list"
            )
        turns = tuple(
            self._turn(entry, entry_line, f"case '{name}' turn {index + 1}", index + 1)
            for index, (entry, entry_line) in enumerate(
                zip(turns_raw, turns_raw.item_lines, strict=True)
            )
        )
        return Case(name, line, setup, turns)

    def _turn(self, raw: Any, line: int, where: str, number: int) -> Turn:
        raw = self.mapping(raw, line, where, _TURN_KEYS)
        inputs = [key for key in _INPUTS if key in raw]
        if len(inputs) != 1:
            raise self.fail(
                line,
                f"{where}: expected exactly one input ({', '.join(_INPUTS)}), got "
                f"{', '.join(inputs) or 'none'}",
            )
        key = inputs[0]
        event, payload = self._event(key, raw[key], raw.key_lines[key], where)
        expect = raw.get("expect") or LineMap()
        expect = self.mapping(
            expect, raw.key_lines.get("expect", line), f"{where}.expect", _EXPECT_KEYS
        )
        self._check_expect(expect, where)
        params = self._params(
            raw.get("params"), raw.key_lines.get("params", line), f"{where}.params"
        )
        time = self._time(raw, where) if "time" in raw else None
        hooks = self._hooks(raw["hooks"], raw.key_lines["hooks"], where) if "hooks" in raw else None
        queue = self._queue(raw["queue"], raw.key_lines["queue"], where) if key == "queue" else None
        return Turn(number, line, event, payload, params, dict(expect), time, hooks, queue)

    def _queue(self, value: Any, line: int, where: str) -> dict[str, int]:
        """`queue: {position: 3, agents_online: 0}`: the figures the platform reports."""
        figures = self.mapping(value, line, f"{where}.queue", _QUEUE_FIGURES)
        for name, figure in figures.items():
            if not isinstance(figure, int) or isinstance(figure, bool) or figure < 0:
                raise self.fail(line, f"{where}.queue.{name}: expected a whole number")
        return dict(figures)

    def _event(self, key: str, value: Any, line: int, where: str) -> tuple[str, dict[str, Any]]:
        if key in _FLAG_INPUTS:
            if value is not True:
                raise self.fail(line, f"{where}: write '{key}: true'")
            if key == "hangup":
                return "call_ended", {"hung_up_by": "HANG_UP_PARTY_CALLER"}
            return _FLAG_INPUTS[key], {}
        if key in ("say", "keys", "recorded"):
            if not isinstance(value, str):
                # Unquoted keys are numbers in YAML: `keys: 0123` would be 83 (octal).
                raise self.fail(line, f'{where}: {key}: expected quoted text, e.g. {key}: "1"')
            if key == "say":
                return "speech_recognized", {"text": value}
            if key == "keys":
                return "digits_entered", {"digits": value}
            return "recording_finished", {"recording_uri": value}
        if key == "transfer":
            if value not in TRANSFER_RESULTS:
                raise self.fail(
                    line, f"{where}: transfer: expected one of: {', '.join(TRANSFER_RESULTS)}"
                )
            return "transfer_finished", dict(TRANSFER_RESULTS[value])
        if key == "queue":
            return "queue_status_reported", {}
        if key == "barge_in":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.fail(
                    line, f"{where}: barge_in: expected milliseconds of speech, e.g. 800"
                )
            return "barged_in", {"speech_duration_ms": value}
        # event: {NAME: PAYLOAD} in the contract's proto JSON.
        if not isinstance(value, LineMap) or len(value) != 1:
            raise self.fail(
                line, f"{where}: event: expected one NAME: PAYLOAD, e.g. {{call_started: {{}}}}"
            )
        name, payload = next(iter(value.items()))
        if name not in EVENT_FIELDS:
            raise self.fail(
                line,
                f"{where}: unknown event '{name}' (expected one of: {', '.join(EVENT_FIELDS)})",
            )
        if payload is not None and not isinstance(payload, dict):
            raise self.fail(line, f"{where}: event {name}: the payload must be a mapping")
        return name, _plain(payload or {})

    def _check_expect(self, expect: LineMap, where: str) -> None:
        action = expect.get("action")
        if action is not None and action not in ACTION_FIELDS:
            raise self.fail(
                expect.key_lines["action"],
                f"{where}.expect.action: unknown action '{action}' (expected one of: {', '.join(ACTION_FIELDS)})",
            )
        for key in ("slots", "counters", "response"):
            if key in expect and not isinstance(expect[key], dict):
                raise self.fail(expect.key_lines[key], f"{where}.expect.{key}: expected a mapping")
        if "prompts" in expect and not isinstance(expect["prompts"], list):
            raise self.fail(expect.key_lines["prompts"], f"{where}.expect.prompts: expected a list")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# -- checking decisions -----------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, str) else str(value)


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float | str):
        try:
            return float(expected) == float(actual)
        except ValueError:
            return False
    return str(expected) == str(actual)


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def subset_mismatches(expected: Any, actual: Any, path: str) -> list[str]:
    """How `actual` fails to contain `expected` (mappings partially, lists item by item)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"expected {path} to be a mapping, got {_text(actual)}"]
        problems = []
        for key, value in expected.items():
            if key not in actual:
                if value is not None:
                    problems.append(f"expected {path}.{key} = {_text(value)}, got nothing")
                continue
            if value is None:
                problems.append(f"expected no {path}.{key}, got {_text(actual[key])}")
                continue
            problems += subset_mismatches(value, actual[key], f"{path}.{key}")
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"expected {path} = {expected}, got {actual}"]
        return [
            problem
            for index, (want, got) in enumerate(zip(expected, actual, strict=True))
            for problem in subset_mismatches(want, got, f"{path}[{index}]")
        ]
    if not _same(expected, actual):
        return [f"expected {path} = {_text(expected)}, got {_text(actual)}"]
    return []


def check_decision(expect: dict[str, Any], decision: Decision) -> list[str]:
    """Every way a decision differs from a turn's expectations, as readable sentences."""
    response, state = decision.response, decision.state
    diagnostics = response.diagnostics
    problems: list[str] = []

    def compare(what: str, want: Any, got: Any) -> None:
        if not _same(want, got):
            problems.append(
                f"expected {what} {_text(want)}, got {_text(got) if got != '' else 'none'}"
            )

    if "action" in expect:
        compare("action", expect["action"], action_name(response))
    if "node" in expect:
        compare("node", expect["node"], diagnostics.node_id)
    if "intent" in expect:
        compare("intent", expect["intent"] or "", diagnostics.matched_intent)
    if "dialogue_over" in expect:
        compare("dialogue_over", expect["dialogue_over"], response.dialogue_over)
    prompts = prompt_items(response)
    spoken = "\n".join(prompts)
    heard = " | ".join(prompts) or "nothing"
    for wanted in _as_list(expect.get("say_contains", [])):
        if wanted not in spoken:
            problems.append(f"expected the prompts to contain {wanted!r}, got: {heard}")
    for unwanted in _as_list(expect.get("say_not_contains", [])):
        if unwanted in spoken:
            problems.append(f"expected the prompts not to contain {unwanted!r}, got: {heard}")
    if "prompts" in expect and [str(p) for p in expect["prompts"]] != prompts:
        problems.append(f"expected prompts {[str(p) for p in expect['prompts']]}, got {prompts}")
    if "note_contains" in expect and str(expect["note_contains"]) not in diagnostics.note:
        problems.append(
            f"expected the note to contain {str(expect['note_contains'])!r}, got {diagnostics.note!r}"
        )
    for name, want in (expect.get("slots") or {}).items():
        got = state.slots.get(str(name))
        if want is None and got is not None:
            problems.append(f"expected slot {name} unset, got {got!r}")
        elif want is not None and (got is None or not _same(want, got)):
            problems.append(f"expected slot {name} = {_text(want)}, got {_text(got)}")
    for name, want in (expect.get("counters") or {}).items():
        # A counter never counted is 0, so `null` and 0 mean the same.
        compare(f"counter {name}", 0 if want is None else want, state.counters.get(str(name), 0))
    if "response" in expect:
        actual = json_format.MessageToDict(
            response, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
        problems += subset_mismatches(_plain(expect["response"]), actual, "response")
    return problems


# -- running ----------------------------------------------------------------------------------


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0


def _answers_from(results: list[HookResult]) -> HookHandler:
    """Answers hooks with scripted results, in order, consuming them."""

    def answer(call: HookCall) -> HookResult:
        return results.pop(0)

    return answer


def run_case(flow: Flow, case: Case, out: TextIO, *, verbose: bool, path: Path) -> bool:
    """Runs one case, printing PASS or FAIL (with where and what the bot did); True on PASS."""
    conversation = Conversation(flow, case.setup.call)

    def fail(turn: Turn, message: str) -> bool:
        print(f"FAIL {case.name}: turn {turn.number}: {message}", file=out)
        print(f"  at {path}:{turn.line}", file=out)
        return False

    for turn in case.turns:
        params = {**case.setup.params, **turn.params}
        scripted = list(turn.hooks or ())
        try:
            decision = conversation.send(
                turn.event,
                turn.payload,
                params,
                occurred_at=turn.time or case.setup.time,
                hooks=_answers_from(scripted) if scripted else None,
                queue_status=turn.queue_status,
            )
        except ToolError as exc:
            return fail(turn, str(exc))
        if scripted:
            used = len(turn.hooks or ()) - len(scripted)
            return fail(turn, f"{len(turn.hooks or ())} hook results given, {used} used")
        if verbose:
            said = event_text(conversation.last_request) if conversation.last_request else ""
            for call, result in conversation.hook_log:
                print(
                    f"  turn {turn.number} hook {call.kind} '{call.node}': {result.outcome.value}",
                    file=out,
                )
            print(f"  turn {turn.number} {said}: {describe(decision.response)[0]}", file=out)
        problems = check_decision(turn.expect, decision)
        if problems:
            fail(turn, "; ".join(problems))
            for line in describe(decision.response):
                print(f"  got {line}" if line.startswith("[") else f"  {line}", file=out)
            return False
    print(f"PASS {case.name}", file=out)
    return True


# A flows directory (rather than a directory of tests) holds a flow or a routing table: a YAML
# file with a top-level `nodes:`, which no test file has (it would be an unknown field).
_FLOW_NODES = re.compile(r"^nodes\s*:", re.MULTILINE)
_ROUTING_FILES = ("routing.yaml", "routing.yml")
# Where a flows directory keeps its conversation tests.
TESTS_DIR = "tests"


def _yaml_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def is_flows_dir(directory: Path) -> bool:
    """Whether a directory holds flows (its tests being in `tests/`), not tests."""
    for path in _yaml_files(directory):
        if path.name in _ROUTING_FILES:
            return True
        try:
            if _FLOW_NODES.search(path.read_text(encoding="utf-8")):
                return True
        except (OSError, UnicodeError):
            continue  # reported when read as a test file, if it is one
    return False


def find_test_files(paths: list[Path], flows_dir: Path | None) -> list[tuple[Path, Path]]:
    """Each test file to run with the flows directory its `flow:` ids are looked up in.

    A flows directory's tests are those in its `tests/`, against its own flows unless
    `flows_dir` (--flows) says otherwise; other files use `flows_dir`, else the default one.
    """
    fallback = flows_dir or default_flows_dir()
    files: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir() and is_flows_dir(path):
            tests = path / TESTS_DIR
            if not tests.is_dir():
                raise ToolError(
                    f"{path} is a flows directory without conversation tests "
                    f"(expected them in {tests})"
                )
            files += [(test, flows_dir or path) for test in _yaml_files(tests)]
        elif path.is_dir():
            files += [(test, fallback) for test in _yaml_files(path)]
        elif path.is_file():
            files.append((path, fallback))
        else:
            raise ToolError(f"{path}: no such file or directory")
    return files


def run_paths(
    paths: list[Path],
    flows_dir: Path | None,
    out: TextIO,
    *,
    select: str = "",
    verbose: bool = False,
) -> Tally:
    tally = Tally()
    catalogs: dict[Path, Catalog] = {}
    for path, flows in find_test_files(paths, flows_dir):
        try:
            suite = _Reader(path, flows, catalogs).read()
        except (SchemaError, ToolError) as exc:
            print(f"ERROR {exc}", file=out)
            tally.failed += 1
            continue
        except (OSError, UnicodeError) as exc:
            print(f"ERROR {path}: cannot be read as UTF-8 text: {exc}", file=out)
            tally.failed += 1
            continue
        cases = [case for case in suite.cases if select in case.name]
        if not cases:
            continue
        print(f"{path} ({suite.flow.id} {suite.flow.version})", file=out)
        for case in cases:
            if run_case(suite.flow, case, out, verbose=verbose, path=path):
                tally.passed += 1
            else:
                tally.failed += 1
    return tally


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    tally = run_paths(args.paths, args.flows, out, select=args.select, verbose=args.verbose)
    print(f"{tally.passed} passed, {tally.failed} failed", file=out)
    return 1 if tally.failed or not tally.passed else 0
