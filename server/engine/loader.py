"""Loading flow files (YAML) into validated `Flow` objects, with errors that point at lines.

Every problem is reported as `file:line: where: what is wrong (expected ...)`, all of them at
once, so an author fixes a flow in one pass. The server refuses to start on any of them.

Subflows are reusable pieces ("collect a phone number") in `subflows/*.yaml` beside the flows.
They are inlined at load time: a `subflow` node becomes a jump to a copy of the subflow's nodes
(ids prefixed with the calling node's id and a dot: `get_phone.ask`), and each `return` node a
jump back to the caller's target for that outcome. So at run time there are no subflows — no
call stack in the call's state — and a flow's version pins the subflows it was loaded with.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from server.engine import conditions as condition_ops
from server.engine import hours
from server.engine.flow import (
    AiGatherNode,
    BargeIn,
    Branch,
    Case,
    Choice,
    Collect,
    Command,
    Condition,
    Defaults,
    Escalation,
    Flow,
    Fulfillment,
    HangUp,
    HoursNode,
    Menu,
    NluConfig,
    Node,
    Option,
    PromptItem,
    PromptSpec,
    RecordNode,
    Say,
    SetNode,
    SlotType,
    Transfer,
    TransferTarget,
    WaitNode,
)
from server.engine.matching import normalize

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_FLOW_ID = re.compile(r"^[a-z][a-z0-9_-]{0,47}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KEYS = "0123456789*#"
_TRANSFER_KINDS = (
    "phone_number",
    "skill_queue",
    "skill_queue_name",
    "agent_id",
    "ivr_flow",
    "sip_uri",
)
_CONDITION_OPS = condition_ops.OPS
# call.date and call.time: the call's local date (YYYY-MM-DD) and time (HH:MM) in the flow's zone.
_CALL_FIELDS = ("call.caller", "call.callee", "call.date", "call.time")
_PARAM_NAME = re.compile(r"^params\.[A-Za-z0-9_.-]{1,64}$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^\d{2}:\d{2}$")
MAX_FLOW_FILE_BYTES = 4 * 1024 * 1024
SUBFLOWS_DIR = "subflows"
# Separates a subflow node's id from the ids of the nodes inlined for it: never in an authored id.
SUBFLOW_SEPARATOR = "."
DEFAULT_HOOK_TIMEOUT_MS = 300
MAX_HOOK_TIMEOUT_MS = 10_000
DONE = "done"
# 87: "billion" is only 85.7 similar to "billing" and must not match it, while "operater" →
# "operator" (87.5) and "bills" → "bill" (88.9) should.
DEFAULT_FUZZY_THRESHOLD = 87.0

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a flow file."""

    file: str
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.where}: {self.message}"


class FlowError(Exception):
    """A flow file (or a set of them) is invalid; `problems` lists every issue found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid flow:\n" + "\n".join(f"  {p}" for p in problems))


class _Map(dict[str, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line = 0
        self.key_lines: dict[str, int] = {}


class _List(list[Any]):
    """A YAML sequence that remembers its line and its items' lines."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.line = 0
        self.item_lines: list[int] = [0] * len(self)


# libyaml's parser when PyYAML was built with it (5-8x faster on big flows, same nodes and
# line marks); the pure-Python one otherwise.
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _LineLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """SafeLoader whose mappings and sequences carry line numbers."""


class _ExplainingLoader(yaml.SafeLoader):
    """The pure-Python parser, used only to word a syntax error: unlike libyaml's, its
    messages quote the offending line and say what was expected there."""


class _DuplicateKeyError(yaml.YAMLError):
    """YAML keeps the last of two equal keys; a flow author never means that."""

    def __init__(self, key: str, line: int, first_line: int) -> None:
        super().__init__(f"duplicate key '{key}'")
        self.key, self.line, self.first_line = key, line, first_line


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    result = _Map()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = str(loader.construct_object(key_node, deep=True))
        line = key_node.start_mark.line + 1
        if key in result:
            raise _DuplicateKeyError(key, line, result.key_lines[key])
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


def _construct_list(loader: _LineLoader, node: yaml.SequenceNode) -> _List:
    result = _List(loader.construct_object(item, deep=True) for item in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [item.start_mark.line + 1 for item in node.value]
    return result


for _loader in (_LineLoader, _ExplainingLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_list)


class _Checker:
    """Reads one flow document, recording problems instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, line: int, where: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, where, message))

    def get(
        self,
        data: _Map,
        key: str,
        kind: type[T],
        where: str,
        *,
        default: T | None = None,
        required: bool = False,
    ) -> T | None:
        """Returns data[key] if it has the expected type, else records a problem."""
        if key not in data:
            if required:
                self.problem(data.line, where, f"'{key}' is missing (expected {_kind(kind)})")
            return default
        value = data[key]
        line = data.key_lines.get(key, data.line)
        # bool is an int in Python; a flow author writing `max_no_input: yes` meant no number.
        if kind in (int, float) and isinstance(value, bool):
            self.problem(line, f"{where}.{key}", f"got {_describe(value)}, expected {_kind(kind)}")
            return default
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is str and isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)  # keys like `key: 1` are meant as text
        if not isinstance(value, kind):
            self.problem(line, f"{where}.{key}", f"got {_describe(value)}, expected {_kind(kind)}")
            return default
        return value

    def known_keys(self, data: _Map, allowed: tuple[str, ...], where: str) -> None:
        for key in data:
            if key not in allowed:
                self.problem(
                    data.key_lines.get(key, data.line),
                    where,
                    f"unknown field '{key}' (expected one of: {', '.join(allowed)})",
                )

    def line_of(self, data: _Map, key: str) -> int:
        return data.key_lines.get(key, data.line)


def _kind(kind: type[Any]) -> str:
    return {str: "text", int: "a whole number", float: "a number", bool: "true or false"}.get(
        kind, "a mapping" if kind is _Map else "a list" if kind is _List else kind.__name__
    )


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def load_flow_file(path: Path, subflows: Mapping[str, Subflow] | None = None) -> Flow:
    """Loads and validates one flow file.

    Args:
        path: The flow file.
        subflows: The subflows it may use; None loads them from `subflows/` beside the file.

    Raises:
        FlowError: with every problem found, each pointing at a line of the file (and of the
            subflow files, when those are loaded here and are wrong).
    """
    if subflows is None:
        subflows = load_subflows(path.parent / SUBFLOWS_DIR)
    name = str(path)
    return parse_flow(_read_text(path), name, subflows)


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FLOW_FILE_BYTES:
        raise FlowError(
            [Problem(str(path), 1, "file", f"{size} bytes, expected at most {MAX_FLOW_FILE_BYTES}")]
        )
    return path.read_text(encoding="utf-8")


def _parse_yaml(text: str, file: str) -> _Map:
    try:
        try:
            data = yaml.load(text, Loader=_LineLoader)
        except _DuplicateKeyError:
            raise
        except yaml.YAMLError:
            # Errors are rare: parse again, slowly, for the better message (raises again).
            data = yaml.load(text, Loader=_ExplainingLoader)
    except _DuplicateKeyError as exc:
        message = f"defined twice (first at line {exc.first_line}); expected each key once"
        raise FlowError([Problem(file, exc.line, f"key '{exc.key}'", message)]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise FlowError([Problem(file, line, "yaml", str(exc).replace("\n", " "))]) from exc
    if not isinstance(data, _Map):
        raise FlowError([Problem(file, 1, "file", f"got {_describe(data)}, expected a mapping")])
    return data


def parse_flow(
    text: str, file: str = "<flow>", subflows: Mapping[str, Subflow] | None = None
) -> Flow:
    """Parses and validates flow YAML text; `file` names it in error messages.

    Args:
        text: The flow's YAML.
        file: Its name, for error messages.
        subflows: The subflows its `subflow` nodes may use, by id.
    """
    data = _parse_yaml(text, file)
    checker = _Checker(file)
    flow = _FlowReader(checker, data, subflows or {}).read()
    if checker.problems or flow is None:
        raise FlowError(checker.problems)
    return flow


@dataclass(frozen=True, slots=True)
class _Return:
    """A subflow's `return` node, until the subflow is inlined into a caller."""

    id: str
    outcome: str


@dataclass(frozen=True, slots=True)
class _SubflowCall:
    """A `subflow` node, until it is inlined: the subflow and a target per outcome."""

    id: str
    subflow: Subflow
    targets: dict[str, str]


_Raw = Node | _Return | _SubflowCall


@dataclass(frozen=True, slots=True)
class Subflow:
    """A validated subflow, ready to be inlined wherever a `subflow` node names it.

    Attributes:
        id: Its id (`subflow:` in its file).
        start: Its first node.
        nodes: Its nodes, subflows it uses already inlined; `return` nodes still open.
        slots: Every slot it fills or declares, so callers' templates may read them.
        outcomes: The outcomes its `return` nodes give (the default one is "done").
        source: Its file.
        line: The line of its `subflow:` key.
    """

    id: str
    start: str
    nodes: dict[str, Node | _Return]
    slots: frozenset[str]
    outcomes: frozenset[str]
    source: str = ""
    line: int = 1


def parse_subflows(texts: Mapping[str, str]) -> dict[str, Subflow]:
    """Parses and validates subflow files (file name → YAML text); subflows may use each other.

    Raises:
        FlowError: with every problem of every file, including subflows that use each other
            in a loop and ids used twice.
    """
    subflows, problems = _build_subflows(texts)
    if problems:
        raise FlowError(problems)
    return subflows


def load_subflows(directory: Path) -> dict[str, Subflow]:
    """Loads every `*.yaml`/`*.yml` subflow in a directory; none when there is no directory.

    Raises:
        FlowError: as `parse_subflows`.
    """
    subflows, problems = _load_subflow_dir(directory)
    if problems:
        raise FlowError(problems)
    return subflows


def _load_subflow_dir(directory: Path) -> tuple[dict[str, Subflow], list[Problem]]:
    if not directory.is_dir():
        return {}, []
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            texts[str(path)] = _read_text(path)
        except FlowError as exc:
            problems.extend(exc.problems)
    subflows, more = _build_subflows(texts)
    return subflows, problems + more


def _build_subflows(texts: Mapping[str, str]) -> tuple[dict[str, Subflow], list[Problem]]:
    """Builds subflows in the order they need each other, reporting loops once."""
    problems: list[Problem] = []
    documents: dict[str, tuple[str, _Map]] = {}
    for file, text in texts.items():
        try:
            data = _parse_yaml(text, file)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        name = data.get("subflow")
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(
                Problem(
                    file,
                    data.key_lines.get("subflow", data.line),
                    "subflow.subflow",
                    f"got {_describe(name)}, expected the subflow's id (lowercase letters, digits, '_')",
                )
            )
            continue
        if name in documents:
            problems.append(
                Problem(
                    file,
                    data.key_lines["subflow"],
                    "subflow",
                    f"subflow id '{name}' is also used by {documents[name][0]}",
                )
            )
            continue
        documents[name] = (file, data)
    built: dict[str, Subflow] = {}
    failed: set[str] = set()

    def build(name: str, stack: tuple[str, ...]) -> Subflow | str:
        """The subflow, or why it cannot be had (a loop, or it is invalid)."""
        if name in built:
            return built[name]
        if name in failed:
            return f"subflow '{name}' is invalid (see its problems)"
        if name in stack:
            return f"subflows use each other in a loop ({' → '.join([*stack, name])})"
        if name not in documents:
            known = ", ".join(sorted(documents)) or "none"
            return f"unknown subflow '{name}' (expected one of: {known})"
        file, data = documents[name]
        checker = _Checker(file)
        reader = _FlowReader(checker, data, {}, lambda used: build(used, (*stack, name)))
        subflow = reader.read_subflow()
        if checker.problems or subflow is None:
            failed.add(name)
            problems.extend(checker.problems)
            return f"subflow '{name}' is invalid (see its problems)"
        built[name] = subflow
        return subflow

    for name in documents:
        build(name, ())
    return built, problems


_TOP_KEYS = (
    "flow",
    "version",
    "description",
    "language",
    "voice",
    "timezone",
    "start",
    "defaults",
    "commands",
    "nodes",
    "slots",
    "synonyms",
    "nlu",
)
_SUBFLOW_TOP_KEYS = ("subflow", "description", "start", "nodes", "slots")
_NODE_KEYS: dict[str, tuple[str, ...]] = {
    "say": ("type", "prompt", "next", "wait_for_playback", "barge_in"),
    "menu": (
        "type", "prompt", "choices", "speech", "no_input", "no_match", "max_no_input",
        "max_no_match", "on_max", "nlu", "fuzzy_threshold",
    ),
    "collect": (
        "type", "prompt", "slot", "slot_type", "next", "min_length", "max_length", "pattern",
        "invalid", "terminator", "keys", "speech", "no_input", "no_match", "max_no_input",
        "max_no_match", "on_max", "min", "max", "options", "country_code", "confirm", "nlu",
        "fuzzy_threshold",
    ),
    "branch": ("type", "cases", "default"),
    "transfer": ("type", "prompt", "target", "mode", "monitored", "caller_id", "timeout_ms", "on_failure"),
    "hangup": ("type", "prompt", "reason"),
    "record": ("type", "prompt", "slot", "next", "max_duration_ms", "end_silence_ms", "beep", "stop_key"),
    "wait": ("type", "duration_ms", "next"),
    "ai_gather": ("type", "greeting", "schema", "next", "on_failure", "voice", "user_response_timeout_ms"),
    "set": ("type", "set", "clear", "next"),
    "fulfillment": ("type", "url", "timeout_ms", "args", "slots", "on_success", "on_error", "on_timeout"),
    "hours": ("type", "timezone", "schedule", "holidays", "special_days", "open", "closed", "holiday"),
    "subflow": ("type", "flow", "next", "outcomes"),
    "return": ("type", "outcome"),
}  # fmt: skip
_SLOT_TYPES_WITH_KEYS = frozenset(
    {
        SlotType.DIGITS,
        SlotType.NUMBER,
        SlotType.INTEGER,
        SlotType.AMOUNT,
        SlotType.MOBILE_CN,
        SlotType.E164,
        SlotType.YES_NO,
        SlotType.CHOICE,
    }
)


class _FlowReader:
    """Builds a Flow (or a Subflow) from a parsed document, then checks references across it."""

    def __init__(
        self,
        checker: _Checker,
        data: _Map,
        subflows: Mapping[str, Subflow],
        resolve: Callable[[str], Subflow | str] | None = None,
    ) -> None:
        self.c = checker
        self.data = data
        self.references: list[tuple[int, str, str]] = []  # (line, where, node id)
        self.templates: list[tuple[int, str, str]] = []  # (line, where, text)
        self.slots: set[str] = set()
        self.node_lines: dict[str, int] = {}
        self.is_subflow = resolve is not None
        # Finds a subflow by id: the given ones for a flow; built on demand for a subflow.
        self.resolve = resolve or (
            lambda name: (
                subflows.get(name)
                or f"unknown subflow '{name}' (expected one of: {', '.join(sorted(subflows)) or 'none'})"
            )
        )
        self.outcomes: set[str] = set()

    def read(self) -> Flow | None:
        c, data = self.c, self.data
        c.known_keys(data, _TOP_KEYS, "flow")
        flow_id = c.get(data, "flow", str, "flow", required=True) or ""
        if flow_id and not _FLOW_ID.match(flow_id):
            c.problem(
                c.line_of(data, "flow"),
                "flow.flow",
                f"'{flow_id}' is not a valid flow id (expected lowercase letters, digits, '-', '_')",
            )
        version = c.get(data, "version", str, "flow", required=True) or ""
        language = c.get(data, "language", str, "flow", default="zh-CN") or "zh-CN"
        voice = c.get(data, "voice", str, "flow", default="") or ""
        timezone = self._timezone(data, "flow") or "UTC"
        declared = c.get(data, "slots", _List, "flow", default=_List()) or _List()
        self.slots.update(str(slot) for slot in declared)
        start = c.get(data, "start", str, "flow", required=True) or ""
        if start:
            self.references.append((c.line_of(data, "start"), "flow.start", start))
        defaults = self._defaults(c.get(data, "defaults", _Map, "flow", required=True))
        raw = self._nodes(c.get(data, "nodes", _Map, "flow", required=True))
        commands = self._commands(
            c.get(data, "commands", _List, "flow", default=_List()) or _List()
        )
        synonyms = self._synonyms(data)
        nlu = self._nlu(data)
        self._check_references(raw)
        self._check_templates()
        nodes = {
            node_id: node
            for node_id, node in self._inline(raw).items()
            if not isinstance(node, _Return)
        }
        self._check_say_cycles(nodes)
        if defaults is None:
            return None
        return Flow(
            flow_id,
            version,
            language,
            voice,
            start,
            defaults,
            commands,
            nodes,
            c.file,
            c.line_of(data, "flow"),
            timezone=timezone,
            synonyms=synonyms,
            nlu=nlu,
        )

    def read_subflow(self) -> Subflow | None:
        c, data = self.c, self.data
        c.known_keys(data, _SUBFLOW_TOP_KEYS, "subflow")
        name = c.get(data, "subflow", str, "subflow", required=True) or ""
        declared = c.get(data, "slots", _List, "subflow", default=_List()) or _List()
        self.slots.update(str(slot) for slot in declared)
        start = c.get(data, "start", str, "subflow", required=True) or ""
        if start:
            self.references.append((c.line_of(data, "start"), "subflow.start", start))
        raw = self._nodes(c.get(data, "nodes", _Map, "subflow", required=True))
        self._check_references(raw)
        self._check_templates()
        nodes = self._inline(raw)
        self._check_say_cycles(nodes)
        if not self.outcomes:
            c.problem(
                c.line_of(data, "nodes"),
                "subflow",
                "no 'return' node (expected at least one, to go back)",
            )
        return Subflow(
            name,
            start,
            nodes,
            frozenset(self.slots),
            frozenset(self.outcomes),
            c.file,
            c.line_of(data, "subflow"),
        )

    # -- pieces ---------------------------------------------------------------------------

    def _ref(self, data: _Map, key: str, where: str, *, required: bool = True) -> str:
        target = self.c.get(data, key, str, where, default="", required=required) or ""
        if target:
            self.references.append((self.c.line_of(data, key), f"{where}.{key}", target))
        return target

    def _defaults(self, data: _Map | None) -> Defaults | None:
        if data is None:
            return None
        c, w = self.c, "defaults"
        c.known_keys(
            data,
            ("on_max_attempts", "barge_in", "min_speech_ms", "no_input_timeout_ms", "inter_digit_timeout_ms",
             "max_no_input", "max_no_match", "max_failures", "on_failure_budget", "no_input", "no_match",
             "fuzzy_threshold"),
            w,
        )  # fmt: skip
        return Defaults(
            on_max_attempts=self._ref(data, "on_max_attempts", w),
            barge_in=self._barge_in(data, w) or BargeIn.ANY,
            min_speech_ms=self._positive(data, "min_speech_ms", w, 0, zero_ok=True),
            no_input_timeout_ms=self._positive(data, "no_input_timeout_ms", w, 5_000),
            inter_digit_timeout_ms=self._positive(data, "inter_digit_timeout_ms", w, 3_000),
            max_no_input=self._positive(data, "max_no_input", w, 3),
            max_no_match=self._positive(data, "max_no_match", w, 3),
            max_failures=self._positive(data, "max_failures", w, 0, zero_ok=True),
            on_failure_budget=self._ref(data, "on_failure_budget", w, required=False),
            no_input=self._prompt_list(data, "no_input", w),
            no_match=self._prompt_list(data, "no_match", w),
            fuzzy_threshold=_or(self._fuzzy(data, w), DEFAULT_FUZZY_THRESHOLD),
        )

    def _fuzzy(self, data: _Map, where: str) -> float | None:
        value = self.c.get(data, "fuzzy_threshold", float, where)
        if value is not None and not 0 <= value <= 100:
            self.c.problem(
                self.c.line_of(data, "fuzzy_threshold"),
                f"{where}.fuzzy_threshold",
                f"got {value:g}, expected 0 (off) to 100",
            )
            return None
        return value

    def _timezone(self, data: _Map, where: str) -> str:
        zone = self.c.get(data, "timezone", str, where, default="") or ""
        if not zone:
            return ""
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            self.c.problem(
                self.c.line_of(data, "timezone"),
                f"{where}.timezone",
                f"unknown time zone '{zone}' (expected an IANA name such as Asia/Shanghai)",
            )
            return ""
        return zone

    def _synonyms(self, data: _Map) -> dict[str, tuple[str, ...]]:
        """`synonyms: {话费: [电话费, 手机费]}` or `[[话费, 电话费], ...]`: groups of equal words."""
        raw = data.get("synonyms")
        if raw is None:
            return {}
        line = self.c.line_of(data, "synonyms")
        groups: list[tuple[int, list[str]]] = []
        if isinstance(raw, _Map):
            for word, others in raw.items():
                word_line = raw.key_lines.get(word, line)
                if not isinstance(others, _List):
                    self.c.problem(
                        word_line,
                        f"flow.synonyms.{word}",
                        f"got {_describe(others)}, expected a list of words",
                    )
                    continue
                groups.append((word_line, [str(word), *(str(o) for o in others)]))
        elif isinstance(raw, _List):
            for group, group_line in zip(raw, raw.item_lines, strict=True):
                if not isinstance(group, _List) or len(group) < 2:
                    self.c.problem(
                        group_line, "flow.synonyms", "expected a list of at least two words"
                    )
                    continue
                groups.append((group_line, [str(word) for word in group]))
        else:
            self.c.problem(
                line, "flow.synonyms", f"got {_describe(raw)}, expected a mapping or a list"
            )
        synonyms: dict[str, tuple[str, ...]] = {}
        for group_line, words in groups:
            group = tuple(dict.fromkeys(words))
            for word in group:
                if normalize(word) in synonyms:
                    self.c.problem(
                        group_line,
                        "flow.synonyms",
                        f"'{word}' is in two synonym groups (expected each word in one)",
                    )
                synonyms[normalize(word)] = group
        return synonyms

    def _nlu(self, data: _Map) -> NluConfig | None:
        raw = self.c.get(data, "nlu", _Map, "flow")
        if raw is None:
            return None
        where = "flow.nlu"
        self.c.known_keys(raw, ("url", "timeout_ms", "min_confidence"), where)
        url = self._url(raw, where)
        confidence = self.c.get(raw, "min_confidence", float, where, default=0.5)
        if confidence is not None and not 0 <= confidence <= 1:
            self.c.problem(
                self.c.line_of(raw, "min_confidence"),
                f"{where}.min_confidence",
                f"got {confidence:g}, expected 0 to 1",
            )
        return NluConfig(url, self._timeout(raw, where), confidence or 0.0)

    def _url(self, data: _Map, where: str) -> str:
        url = self.c.get(data, "url", str, where, required=True) or ""
        if url and not _URL.match(url):
            self.c.problem(
                self.c.line_of(data, "url"),
                f"{where}.url",
                f"got '{url}', expected an http:// or https:// URL",
            )
        return url

    def _timeout(self, data: _Map, where: str) -> int:
        timeout = self._positive(data, "timeout_ms", where, DEFAULT_HOOK_TIMEOUT_MS)
        if timeout > MAX_HOOK_TIMEOUT_MS:
            self.c.problem(
                self.c.line_of(data, "timeout_ms"),
                f"{where}.timeout_ms",
                f"got {timeout}, expected at most {MAX_HOOK_TIMEOUT_MS}",
            )
        return timeout

    def _patterns(self, data: _Map, where: str) -> tuple[str, ...]:
        raw = self.c.get(data, "patterns", _List, where, default=_List()) or _List()
        patterns: list[str] = []
        for pattern, line in zip(raw, raw.item_lines, strict=True):
            if self._regex(str(pattern), line, f"{where}.patterns"):
                patterns.append(str(pattern))
        return tuple(patterns)

    def _regex(self, pattern: str, line: int, where: str) -> bool:
        try:
            re.compile(pattern)
        except re.error as exc:
            self.c.problem(line, where, f"invalid regular expression '{pattern}': {exc}")
            return False
        return True

    def _key(self, data: _Map, where: str) -> str:
        key = self.c.get(data, "key", str, where, default="") or ""
        if key and (len(key) != 1 or key not in _KEYS):
            self.c.problem(
                self.c.line_of(data, "key"),
                f"{where}.key",
                f"got '{key}', expected one key of {_KEYS}",
            )
        return key

    def _positive(
        self, data: _Map, key: str, where: str, default: int, *, zero_ok: bool = False
    ) -> int:
        value = self.c.get(data, key, int, where, default=default)
        if value is None:
            return default
        if value < 0 or (value == 0 and not zero_ok):
            self.c.problem(
                self.c.line_of(data, key),
                f"{where}.{key}",
                f"got {value}, expected a number above {-1 if zero_ok else 0}",
            )
            return default
        return value

    def _barge_in(self, data: _Map, where: str) -> BargeIn | None:
        return self._enum(data, "barge_in", BargeIn, where)

    def _enum(self, data: _Map, key: str, enum: Callable[[str], T], where: str) -> T | None:
        raw = self.c.get(data, key, str, where)
        if raw is None:
            return None
        try:
            return enum(raw)
        except ValueError:
            choices = [member.value for member in enum]  # type: ignore[attr-defined]
            self.c.problem(
                self.c.line_of(data, key),
                f"{where}.{key}",
                f"got '{raw}', expected one of: {', '.join(choices)}",
            )
            return None

    def _prompt(self, data: _Map, key: str, where: str, *, required: bool = False) -> PromptSpec:
        if key not in data:
            if required:
                self.c.problem(
                    data.line, where, f"'{key}' is missing (expected text, or a list of prompts)"
                )
            return PromptSpec()
        return self._prompt_value(data[key], self.c.line_of(data, key), f"{where}.{key}")

    def _prompt_value(self, value: Any, line: int, where: str) -> PromptSpec:
        """A prompt is text, an item mapping, a list of those, or {items, barge_in, min_speech_ms}."""
        if isinstance(value, _Map) and "items" in value:
            self.c.known_keys(value, ("items", "barge_in", "min_speech_ms"), where)
            inner = self._prompt_value(
                value["items"], self.c.line_of(value, "items"), f"{where}.items"
            )
            min_speech = self.c.get(value, "min_speech_ms", int, where)
            return PromptSpec(inner.items, self._barge_in(value, where), min_speech)
        values = value if isinstance(value, _List) else [value]
        lines = value.item_lines if isinstance(value, _List) else [line]
        items = tuple(
            item
            for index, (entry, entry_line) in enumerate(zip(values, lines, strict=True))
            if (
                item := self._prompt_item(
                    entry, entry_line, f"{where}[{index}]" if isinstance(value, _List) else where
                )
            )
        )
        if not items:
            self.c.problem(line, where, "no prompt items (expected text, or {tts|audio|url: ...})")
        return PromptSpec(items)

    def _prompt_item(self, value: Any, line: int, where: str) -> PromptItem | None:
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            self.templates.append((line, where, str(value)))
            return PromptItem(text=str(value))
        if not isinstance(value, _Map):
            self.c.problem(line, where, f"got {_describe(value)}, expected text or a mapping")
            return None
        self.c.known_keys(value, ("tts", "audio", "url", "voice", "language", "speed"), where)
        sources = [key for key in ("tts", "audio", "url") if key in value]
        if len(sources) != 1:
            self.c.problem(
                value.line, where, f"has {len(sources)} of tts/audio/url, expected exactly one"
            )
            return None
        text = self.c.get(value, sources[0], str, where, default="") or ""
        if sources[0] == "tts":
            self.templates.append((value.line, where, text))
        speed = self.c.get(value, "speed", float, where, default=0.0) or 0.0
        return PromptItem(
            text=text if sources[0] == "tts" else "",
            media_name=text if sources[0] == "audio" else "",
            url=text if sources[0] == "url" else "",
            voice=self.c.get(value, "voice", str, where, default="") or "",
            language=self.c.get(value, "language", str, where, default="") or "",
            speed=speed,
        )

    def _prompt_list(self, data: _Map, key: str, where: str) -> tuple[PromptSpec, ...]:
        """Escalating prompts: a list whose n-th entry is used the n-th time."""
        if key not in data:
            return ()
        value = data[key]
        if not isinstance(value, _List):
            value = _List([value])
            value.item_lines = [self.c.line_of(data, key)]
        return tuple(
            self._prompt_value(entry, line, f"{where}.{key}[{index}]")
            for index, (entry, line) in enumerate(zip(value, value.item_lines, strict=True))
        )

    def _escalation(self, data: _Map, where: str) -> Escalation:
        return Escalation(
            no_input=self._prompt_list(data, "no_input", where) if "no_input" in data else None,
            no_match=self._prompt_list(data, "no_match", where) if "no_match" in data else None,
            max_no_input=self._positive(data, "max_no_input", where, 1)
            if "max_no_input" in data
            else None,
            max_no_match=self._positive(data, "max_no_match", where, 1)
            if "max_no_match" in data
            else None,
            on_max=self._ref(data, "on_max", where, required=False) or None,
        )

    def _nodes(self, data: _Map | None) -> dict[str, _Raw]:
        nodes: dict[str, _Raw] = {}
        if data is None:
            return nodes
        self.node_lines = dict(data.key_lines)
        for node_id, body in data.items():
            where = f"node '{node_id}'"
            line = data.key_lines[node_id]
            if not _NAME.match(node_id):
                self.c.problem(
                    line,
                    where,
                    "invalid node id (expected lowercase letters, digits and '_', starting with a letter)",
                )
            if not isinstance(body, _Map):
                self.c.problem(
                    line, where, f"got {_describe(body)}, expected a mapping with 'type'"
                )
                continue
            node = self._node(node_id, body, where)
            if node is not None:
                nodes[node_id] = node
        if not nodes:
            self.c.problem(data.line, "nodes", "no nodes (expected at least one)")
        return nodes

    def _node(self, node_id: str, data: _Map, where: str) -> _Raw | None:
        kind = self.c.get(data, "type", str, where, required=True)
        if kind is None:
            return None
        if kind == "return" and not self.is_subflow:
            self.c.problem(
                self.c.line_of(data, "type"),
                f"{where}.type",
                "'return' is only for subflows (expected a node that goes on, or hangup)",
            )
            return None
        if kind not in _NODE_KEYS:
            self.c.problem(
                self.c.line_of(data, "type"),
                f"{where}.type",
                f"unknown node type '{kind}' (expected one of: {', '.join(_NODE_KEYS)})",
            )
            return None
        self.c.known_keys(data, _NODE_KEYS[kind], where)
        builder: Callable[[str, _Map, str], _Raw | None] = getattr(self, f"_node_{kind}")
        return builder(node_id, data, where)

    def _node_say(self, node_id: str, data: _Map, where: str) -> Node:
        prompt = self._prompt(data, "prompt", where, required=True)
        barge_in = self._barge_in(data, where)
        if barge_in is not None:
            prompt = PromptSpec(prompt.items, barge_in, prompt.min_speech_ms)
        wait = self.c.get(data, "wait_for_playback", bool, where, default=False) or False
        return Say(node_id, prompt, self._ref(data, "next", where), wait)

    def _node_menu(self, node_id: str, data: _Map, where: str) -> Node | None:
        raw_choices = self.c.get(data, "choices", _List, where, required=True) or _List()
        choices: list[Choice] = []
        for index, (entry, line) in enumerate(
            zip(raw_choices, raw_choices.item_lines, strict=True)
        ):
            cw = f"{where}.choices[{index}]"
            if not isinstance(entry, _Map):
                self.c.problem(line, cw, f"got {_describe(entry)}, expected a mapping")
                continue
            self.c.known_keys(entry, ("intent", "key", "keywords", "patterns", "next"), cw)
            key = self._key(entry, cw)
            keywords = tuple(
                str(k) for k in (self.c.get(entry, "keywords", _List, cw, default=_List()) or ())
            )
            patterns = self._patterns(entry, cw)
            if not key and not keywords and not patterns:
                self.c.problem(
                    entry.line,
                    cw,
                    "neither 'key' nor 'keywords' nor 'patterns' (expected at least one)",
                )
            intent = self.c.get(entry, "intent", str, cw, required=True) or ""
            choices.append(Choice(intent, self._ref(entry, "next", cw), key, keywords, patterns))
        keys = [choice.key for choice in choices if choice.key]
        if len(keys) != len(set(keys)):
            self.c.problem(
                raw_choices.line, f"{where}.choices", f"keys {keys} repeat (expected each key once)"
            )
        if not choices:
            self.c.problem(data.line, where, "no choices (expected at least one)")
            return None
        return Menu(
            node_id,
            self._prompt(data, "prompt", where, required=True),
            tuple(choices),
            self._escalation(data, where),
            self.c.get(data, "speech", bool, where, default=True) is not False,
            self.c.get(data, "nlu", bool, where, default=True) is not False,
            self._fuzzy(data, where),
        )

    def _node_collect(self, node_id: str, data: _Map, where: str) -> Node | None:
        slot = self.c.get(data, "slot", str, where, required=True) or ""
        self._declare_slot(data, slot, where)
        slot_type = self._enum(data, "slot_type", SlotType, where)
        if slot_type is None and "slot_type" not in data:
            self.c.problem(
                data.line,
                where,
                f"'slot_type' is missing (expected one of: {', '.join(t.value for t in SlotType)})",
            )
        pattern = self.c.get(data, "pattern", str, where, default="") or ""
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.c.problem(
                    self.c.line_of(data, "pattern"),
                    f"{where}.pattern",
                    f"invalid regular expression: {exc}",
                )
        elif slot_type is SlotType.REGEX:
            self.c.problem(data.line, where, "'pattern' is missing (a regex slot needs one)")
        min_length = self._positive(data, "min_length", where, 1)
        max_length = self._positive(data, "max_length", where, 32)
        if min_length > max_length:
            self.c.problem(data.line, where, f"min_length {min_length} > max_length {max_length}")
        terminator = self.c.get(data, "terminator", str, where, default="#") or ""
        if terminator not in ("", "#", "*"):
            self.c.problem(
                self.c.line_of(data, "terminator"),
                f"{where}.terminator",
                f"got '{terminator}', expected '#', '*' or ''",
            )
        options = self._options(data, slot_type, where)
        low, high = self._bounds(data, slot_type, where)
        country_code = self.c.get(data, "country_code", str, where, default="") or ""
        if country_code and (
            slot_type is not SlotType.E164 or not re.fullmatch(r"[1-9]\d{0,2}", country_code)
        ):
            self.c.problem(
                self.c.line_of(data, "country_code"),
                f"{where}.country_code",
                f"got '{country_code}', expected 1-3 digits (e.g. \"86\"), on an e164 slot",
            )
        default_keys = slot_type in _SLOT_TYPES_WITH_KEYS and (
            slot_type is not SlotType.CHOICE or any(option.key for option in options)
        )
        confirm = self._prompt(data, "confirm", where) if "confirm" in data else None
        return Collect(
            node_id,
            self._prompt(data, "prompt", where, required=True),
            slot,
            slot_type or SlotType.TEXT,
            self._ref(data, "next", where),
            min_length,
            max_length,
            pattern,
            self._prompt_list(data, "invalid", where),
            terminator,
            self.c.get(data, "keys", bool, where, default=default_keys) is True,
            self.c.get(data, "speech", bool, where, default=True) is not False,
            self._escalation(data, where),
            min_value=low,
            max_value=high,
            options=options,
            country_code=country_code,
            confirm=confirm,
            nlu=self.c.get(data, "nlu", bool, where, default=True) is not False,
            fuzzy_threshold=self._fuzzy(data, where),
        )

    def _options(self, data: _Map, slot_type: SlotType | None, where: str) -> tuple[Option, ...]:
        """A choice slot's options: plain words, or {value, keywords, key, patterns}."""
        raw = self.c.get(data, "options", _List, where)
        if raw is None:
            if slot_type is SlotType.CHOICE and "options" not in data:
                self.c.problem(data.line, where, "'options' is missing (a choice slot needs them)")
            return ()
        if slot_type is not SlotType.CHOICE:
            self.c.problem(
                self.c.line_of(data, "options"),
                f"{where}.options",
                "only a choice slot has options (expected slot_type: choice)",
            )
            return ()
        options: list[Option] = []
        for index, (entry, line) in enumerate(zip(raw, raw.item_lines, strict=True)):
            ow = f"{where}.options[{index}]"
            if isinstance(entry, str | int | float) and not isinstance(entry, bool):
                options.append(Option(str(entry)))
                continue
            if not isinstance(entry, _Map):
                self.c.problem(line, ow, f"got {_describe(entry)}, expected text or a mapping")
                continue
            self.c.known_keys(entry, ("value", "keywords", "key", "patterns"), ow)
            keywords = tuple(
                str(k) for k in (self.c.get(entry, "keywords", _List, ow, default=_List()) or ())
            )
            options.append(
                Option(
                    self.c.get(entry, "value", str, ow, required=True) or "",
                    keywords,
                    self._key(entry, ow),
                    self._patterns(entry, ow),
                )
            )
        values = [option.value for option in options]
        keys = [option.key for option in options if option.key]
        if len(values) != len(set(values)) or len(keys) != len(set(keys)):
            self.c.problem(
                raw.line, f"{where}.options", "values or keys repeat (expected each once)"
            )
        if not options:
            self.c.problem(raw.line, f"{where}.options", "no options (expected at least one)")
        return tuple(options)

    def _bounds(
        self, data: _Map, slot_type: SlotType | None, where: str
    ) -> tuple[Decimal | None, Decimal | None]:
        found: list[Decimal | None] = []
        for key in ("min", "max"):
            value = self.c.get(data, key, float, where) if key in data else None
            if value is not None and slot_type not in (SlotType.INTEGER, SlotType.AMOUNT):
                self.c.problem(
                    self.c.line_of(data, key),
                    f"{where}.{key}",
                    "only integer and amount slots have min and max",
                )
                value = None
            # Through str: 0.1 is read as the decimal it was written as, not the nearest float.
            found.append(None if value is None else Decimal(str(data[key])))
        low, high = found
        if low is not None and high is not None and low > high:
            self.c.problem(data.line, where, f"min {low} > max {high}")
        return low, high

    def _node_branch(self, node_id: str, data: _Map, where: str) -> Node:
        raw_cases = self.c.get(data, "cases", _List, where, required=True) or _List()
        cases: list[Case] = []
        for index, (entry, line) in enumerate(zip(raw_cases, raw_cases.item_lines, strict=True)):
            cw = f"{where}.cases[{index}]"
            if not isinstance(entry, _Map):
                self.c.problem(
                    line, cw, f"got {_describe(entry)}, expected a mapping with 'when' and 'next'"
                )
                continue
            self.c.known_keys(entry, ("when", "next"), cw)
            when = self.c.get(entry, "when", _Map, cw, required=True) or _Map()
            cases.append(
                Case(tuple(self._conditions(when, f"{cw}.when")), self._ref(entry, "next", cw))
            )
        return Branch(node_id, tuple(cases), self._ref(data, "default", where))

    def _conditions(self, when: _Map, where: str) -> Iterator[Condition]:
        """`when: {slot_name: {equals: v}}`, or `{slot_name: v}` as a short form of equals."""
        for slot, test in when.items():
            line = self.c.line_of(when, slot)
            self.templates.append((line, where, "{" + slot + "}"))
            if not isinstance(test, _Map):
                self.templates.append((line, f"{where}.{slot}", str(test)))
                yield Condition(slot, "equals", (str(test),))
                continue
            self.c.known_keys(test, _CONDITION_OPS, f"{where}.{slot}")
            for op, value in test.items():
                if op not in _CONDITION_OPS:
                    continue
                op_line = test.key_lines.get(op, line)
                values = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
                if op in condition_ops.PRESENCE_OPS:
                    values = ()
                elif op in (*condition_ops.ORDER_OPS, "matches") and (
                    isinstance(value, list | bool)
                ):
                    self.c.problem(
                        op_line,
                        f"{where}.{slot}.{op}",
                        f"got {_describe(value)}, expected one {'pattern' if op == 'matches' else 'number, date or time'}",
                    )
                    continue
                elif op == "matches":
                    if not self._regex(values[0], op_line, f"{where}.{slot}.matches"):
                        continue
                elif op in condition_ops.ORDER_OPS and not _comparable(values[0]):
                    self.c.problem(
                        op_line,
                        f"{where}.{slot}.{op}",
                        f"got '{values[0]}', expected a number, a date (2026-03-05), a time (09:30) or a {{placeholder}}",
                    )
                    continue
                if op != "matches":
                    for text in values:
                        self.templates.append((op_line, f"{where}.{slot}.{op}", text))
                yield Condition(slot, op, values)

    def _node_transfer(self, node_id: str, data: _Map, where: str) -> Node | None:
        target = self.c.get(data, "target", _Map, where, required=True)
        if target is None:
            return None
        self.c.known_keys(target, _TRANSFER_KINDS, f"{where}.target")
        kinds = [kind for kind in _TRANSFER_KINDS if kind in target]
        if len(kinds) != 1:
            self.c.problem(
                target.line,
                f"{where}.target",
                f"has {len(kinds)} targets, expected exactly one of: {', '.join(_TRANSFER_KINDS)}",
            )
            return None
        value = self.c.get(target, kinds[0], str, f"{where}.target", default="") or ""
        mode = self.c.get(data, "mode", str, where, default="blind")
        if mode not in ("blind", "parallel"):
            self.c.problem(
                self.c.line_of(data, "mode"),
                f"{where}.mode",
                f"got '{mode}', expected blind or parallel",
            )
        return Transfer(
            node_id,
            self._prompt(data, "prompt", where),
            TransferTarget(kinds[0], value),
            self._ref(data, "on_failure", where),
            parallel=mode == "parallel",
            monitored=self.c.get(data, "monitored", bool, where, default=False) is True,
            caller_id=self.c.get(data, "caller_id", str, where, default="") or "",
            timeout_ms=self._positive(data, "timeout_ms", where, 0, zero_ok=True),
        )

    def _node_hangup(self, node_id: str, data: _Map, where: str) -> Node:
        reason = self.c.get(data, "reason", str, where, default="completed")
        if reason not in ("completed", "failed"):
            self.c.problem(
                self.c.line_of(data, "reason"),
                f"{where}.reason",
                f"got '{reason}', expected completed or failed",
            )
        return HangUp(node_id, self._prompt(data, "prompt", where), failed=reason == "failed")

    def _node_record(self, node_id: str, data: _Map, where: str) -> Node:
        slot = self.c.get(data, "slot", str, where, required=True) or ""
        self._declare_slot(data, slot, where)
        return RecordNode(
            node_id,
            self._prompt(data, "prompt", where),
            slot,
            self._ref(data, "next", where),
            self._positive(data, "max_duration_ms", where, 60_000),
            self._positive(data, "end_silence_ms", where, 3_000, zero_ok=True),
            self.c.get(data, "beep", bool, where, default=True) is not False,
            self.c.get(data, "stop_key", str, where, default="#") or "",
        )

    def _node_wait(self, node_id: str, data: _Map, where: str) -> Node:
        duration = self.c.get(data, "duration_ms", int, where, required=True) or 0
        if not 0 < duration <= 60_000:
            self.c.problem(
                self.c.line_of(data, "duration_ms"),
                f"{where}.duration_ms",
                f"got {duration}, expected 1-60000",
            )
        return WaitNode(node_id, duration, self._ref(data, "next", where))

    def _node_ai_gather(self, node_id: str, data: _Map, where: str) -> Node:
        schema = self.c.get(data, "schema", _Map, where, required=True) or _Map()
        properties = schema.get("properties")
        if schema and (schema.get("type") != "object" or not isinstance(properties, dict)):
            self.c.problem(
                schema.line,
                f"{where}.schema",
                "expected a JSON schema with type: object and properties",
            )
        for name in properties if isinstance(properties, dict) else ():
            self.slots.add(str(name))
        greeting = self.c.get(data, "greeting", str, where, required=True) or ""
        self.templates.append((self.c.line_of(data, "greeting"), f"{where}.greeting", greeting))
        return AiGatherNode(
            node_id,
            greeting,
            _plain(schema),
            self._ref(data, "next", where),
            self._ref(data, "on_failure", where),
            self.c.get(data, "voice", str, where, default="") or "",
            self._positive(data, "user_response_timeout_ms", where, 0, zero_ok=True),
        )

    def _node_set(self, node_id: str, data: _Map, where: str) -> Node:
        values: list[tuple[str, str]] = []
        raw = self.c.get(data, "set", _Map, where, default=_Map()) or _Map()
        for name, template in raw.items():
            line = raw.key_lines.get(name, raw.line)
            if self._assignable(name, line, f"{where}.set"):
                if isinstance(template, dict | list) or template is None:
                    self.c.problem(
                        line, f"{where}.set.{name}", f"got {_describe(template)}, expected text"
                    )
                    continue
                text = str(template).lower() if isinstance(template, bool) else str(template)
                self.templates.append((line, f"{where}.set.{name}", text))
                values.append((name, text))
        raw_clear = self.c.get(data, "clear", _List, where, default=_List()) or _List()
        clear: list[str] = []
        for name, line in zip(raw_clear, raw_clear.item_lines, strict=True):
            if self._assignable(str(name), line, f"{where}.clear"):
                clear.append(str(name))
        if not values and not clear:
            self.c.problem(data.line, where, "nothing to set or clear (expected 'set' or 'clear')")
        both = sorted({name for name, _ in values} & set(clear))
        if both:
            self.c.problem(data.line, where, f"{', '.join(both)} both set and cleared")
        return SetNode(node_id, tuple(values), tuple(clear), self._ref(data, "next", where))

    def _assignable(self, name: str, line: int, where: str) -> bool:
        """A slot name (declared by being set) or params.NAME."""
        if _PARAM_NAME.match(name):
            return True
        if not _NAME.match(name):
            self.c.problem(
                line,
                where,
                f"'{name}' is not a slot name or params.NAME (expected lowercase letters, digits, '_')",
            )
            return False
        self.slots.add(name)
        return True

    def _node_fulfillment(self, node_id: str, data: _Map, where: str) -> Node:
        raw_args = self.c.get(data, "args", _Map, where, default=_Map()) or _Map()
        args: list[tuple[str, str]] = []
        for name, template in raw_args.items():
            line = raw_args.key_lines.get(name, raw_args.line)
            if isinstance(template, dict | list) or template is None:
                self.c.problem(
                    line, f"{where}.args.{name}", f"got {_describe(template)}, expected text"
                )
                continue
            text = str(template).lower() if isinstance(template, bool) else str(template)
            self.templates.append((line, f"{where}.args.{name}", text))
            args.append((str(name), text))
        returned = self.c.get(data, "slots", _List, where, default=_List()) or _List()
        for name, line in zip(returned, returned.item_lines, strict=True):
            if not _NAME.match(str(name)):
                self.c.problem(line, f"{where}.slots", f"'{name}' is not a valid slot name")
            self.slots.add(str(name))
        on_error = self._ref(data, "on_error", where)
        return Fulfillment(
            node_id,
            self._url(data, where),
            self._ref(data, "on_success", where),
            on_error,
            self._ref(data, "on_timeout", where, required=False) or on_error,
            self._timeout(data, where),
            tuple(args),
        )

    def _node_hours(self, node_id: str, data: _Map, where: str) -> Node:
        weekly: list[tuple[hours.Span, ...] | None] = [None] * 7
        schedule = self.c.get(data, "schedule", _Map, where, required=True) or _Map()
        for days_text, spans_raw in schedule.items():
            line = schedule.key_lines.get(days_text, schedule.line)
            sw = f"{where}.schedule.{days_text}"
            days = [
                day for part in str(days_text).split(",") for day in (hours.parse_days(part) or ())
            ]
            if not days or any(
                hours.parse_days(part) is None for part in str(days_text).split(",")
            ):
                self.c.problem(
                    line,
                    sw,
                    "expected days such as mon, mon-fri or sat,sun (mon tue wed thu fri sat sun)",
                )
                continue
            spans = self._spans(spans_raw, line, sw)
            for day in days:
                if weekly[day] is not None:
                    self.c.problem(line, sw, f"{hours.WEEKDAYS[day]} is given twice")
                weekly[day] = spans
        holidays: set[dt.date] = set()
        raw_holidays = self.c.get(data, "holidays", _List, where, default=_List()) or _List()
        for entry, line in zip(raw_holidays, raw_holidays.item_lines, strict=True):
            holidays.update(self._dates(entry, line, f"{where}.holidays"))
        special: list[tuple[dt.date, tuple[hours.Span, ...]]] = []
        raw_special = self.c.get(data, "special_days", _Map, where, default=_Map()) or _Map()
        for day_text, spans_raw in raw_special.items():
            line = raw_special.key_lines.get(day_text, raw_special.line)
            for special_day in self._dates(day_text, line, f"{where}.special_days"):
                special.append(
                    (special_day, self._spans(spans_raw, line, f"{where}.special_days.{day_text}"))
                )
        return HoursNode(
            node_id,
            hours.Schedule(
                tuple(spans or () for spans in weekly),
                frozenset(holidays),
                tuple(sorted(special)),
            ),
            self._ref(data, "open", where),
            self._ref(data, "closed", where),
            self._ref(data, "holiday", where, required=False),
            self._timezone(data, where),
        )

    def _spans(self, raw: Any, line: int, where: str) -> tuple[hours.Span, ...]:
        """ "09:00-18:00", a list of those, or "closed" / [] for none."""
        if raw is None or raw == "closed":
            return ()
        entries = list(raw) if isinstance(raw, list) else [raw]
        spans: list[hours.Span] = []
        for entry in entries:
            span = hours.parse_span(str(entry)) if isinstance(entry, str) else None
            if span is None:
                self.c.problem(
                    line,
                    where,
                    f'got {_describe(entry)}, expected a time span such as "09:00-18:00" (quoted)',
                )
                continue
            spans.append(span)
        return tuple(spans)

    def _dates(self, raw: Any, line: int, where: str) -> list[dt.date]:
        """A date (YAML date or "2026-10-01") or an inclusive range "2026-10-01..2026-10-07"."""
        if isinstance(raw, dt.date):
            return [raw]
        text = str(raw) if isinstance(raw, str) else ""
        first_text, dots, last_text = text.partition("..")
        try:
            first = dt.date.fromisoformat(first_text.strip())
            last = dt.date.fromisoformat(last_text.strip()) if dots else first
        except ValueError:
            self.c.problem(
                line,
                where,
                f"got {_describe(raw)}, expected a date 2026-10-01 or a range 2026-10-01..2026-10-07",
            )
            return []
        if not 0 <= (last - first).days <= 366:
            self.c.problem(line, where, f"range {text} runs backwards or is longer than a year")
            return []
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    def _node_subflow(self, node_id: str, data: _Map, where: str) -> _Raw | None:
        name = self.c.get(data, "flow", str, where, required=True) or ""
        next_node = self._ref(data, "next", where)
        # Not `on:` — YAML reads an unquoted `on` as the boolean true.
        raw_on = self.c.get(data, "outcomes", _Map, where, default=_Map()) or _Map()
        targets = {DONE: next_node}
        for outcome in raw_on:
            targets[str(outcome)] = self._ref(raw_on, str(outcome), f"{where}.outcomes")
        if not name:
            return None
        found = self.resolve(name)
        if isinstance(found, str):
            self.c.problem(self.c.line_of(data, "flow"), f"{where}.flow", found)
            # Stands in for the subflow, so that nodes leading here are not reported too.
            return Branch(node_id, (), next_node)
        for outcome in sorted(found.outcomes - set(targets)):
            self.c.problem(
                data.line,
                where,
                f"subflow '{name}' may return '{outcome}' (expected a target for it under 'outcomes')",
            )
        for outcome in sorted(set(raw_on) - found.outcomes):
            self.c.problem(
                raw_on.key_lines.get(outcome, raw_on.line),
                f"{where}.outcomes",
                f"subflow '{name}' never returns '{outcome}' (it returns: {', '.join(sorted(found.outcomes))})",
            )
        self.slots.update(found.slots)
        return _SubflowCall(node_id, found, targets)

    def _node_return(self, node_id: str, data: _Map, where: str) -> _Raw:
        outcome = self.c.get(data, "outcome", str, where, default=DONE) or DONE
        if not _NAME.match(outcome):
            self.c.problem(
                self.c.line_of(data, "outcome"),
                f"{where}.outcome",
                f"'{outcome}' is not a valid outcome name (expected lowercase letters, digits, '_')",
            )
        self.outcomes.add(outcome)
        return _Return(node_id, outcome)

    def _inline(self, raw: dict[str, _Raw]) -> dict[str, Node | _Return]:
        """Replaces each subflow node by a jump into a renamed copy of the subflow's nodes."""
        nodes: dict[str, Node | _Return] = {}
        for node_id, node in raw.items():
            if not isinstance(node, _SubflowCall):
                nodes[node_id] = node
                continue
            prefix = node_id + SUBFLOW_SEPARATOR
            nodes[node_id] = Branch(node_id, (), prefix + node.subflow.start)
            for inner_id, inner in node.subflow.nodes.items():
                new_id = prefix + inner_id
                self.node_lines[new_id] = self.node_lines.get(node_id, 1)
                if isinstance(inner, _Return):
                    # A missing target was reported; any node id keeps the graph well-formed.
                    target = node.targets.get(inner.outcome) or node.targets[DONE]
                    nodes[new_id] = Branch(new_id, (), target)
                else:
                    nodes[new_id] = _renamed(inner, new_id, prefix)
        return nodes

    def _declare_slot(self, data: _Map, slot: str, where: str) -> None:
        if slot and not _NAME.match(slot):
            self.c.problem(
                self.c.line_of(data, "slot"),
                f"{where}.slot",
                f"'{slot}' is not a valid slot name (expected lowercase letters, digits, '_')",
            )
        self.slots.add(slot)

    def _commands(self, raw: _List) -> tuple[Command, ...]:
        commands: list[Command] = []
        for index, (entry, line) in enumerate(zip(raw, raw.item_lines, strict=True)):
            where = f"commands[{index}]"
            if not isinstance(entry, _Map):
                self.c.problem(line, where, f"got {_describe(entry)}, expected a mapping")
                continue
            self.c.known_keys(
                entry, ("intent", "keywords", "patterns", "goto", "repeat", "key"), where
            )
            keywords = tuple(
                str(k) for k in (self.c.get(entry, "keywords", _List, where, required=True) or ())
            )
            patterns = self._patterns(entry, where)
            repeat = self.c.get(entry, "repeat", bool, where, default=False) is True
            goto = self._ref(entry, "goto", where, required=not repeat)
            if repeat == bool(goto):
                self.c.problem(
                    entry.line, where, "expected exactly one of 'goto: NODE' or 'repeat: true'"
                )
            key = self.c.get(entry, "key", str, where, default="") or ""
            if key and (len(key) != 1 or key not in _KEYS):
                self.c.problem(
                    self.c.line_of(entry, "key"),
                    f"{where}.key",
                    f"got '{key}', expected one key of {_KEYS}",
                )
            commands.append(
                Command(
                    self.c.get(entry, "intent", str, where, required=True) or "",
                    keywords,
                    goto,
                    repeat,
                    key,
                    patterns,
                )
            )
        return tuple(commands)

    # -- whole-flow checks ----------------------------------------------------------------

    def _check_references(self, nodes: Mapping[str, object]) -> None:
        known = ", ".join(sorted(nodes)) or "none"
        for line, where, target in self.references:
            if target not in nodes:
                self.c.problem(line, where, f"unknown node '{target}' (expected one of: {known})")

    def _check_templates(self) -> None:
        for line, where, text in self.templates:
            for name in _PLACEHOLDER.findall(text):
                if name in self.slots or name in _CALL_FIELDS or name.startswith("params."):
                    continue
                known = ", ".join(sorted(self.slots | set(_CALL_FIELDS))) + ", params.NAME"
                self.c.problem(
                    line, where, f"unknown placeholder '{{{name}}}' (expected one of: {known})"
                )

    def _check_say_cycles(self, nodes: Mapping[str, Node | _Return]) -> None:
        """A loop of straight-through nodes would never reach the platform: reject it, once per
        loop. (Fulfillment nodes in such a loop would call their service without end.)"""

        def successors(node: Node | _Return) -> list[str]:
            if isinstance(node, Say) and not node.wait_for_playback:
                return [node.next]
            if isinstance(node, Branch):
                return [case.next for case in node.cases] + [node.default]
            if isinstance(node, SetNode):
                return [node.next]
            if isinstance(node, HoursNode):
                return [t for t in (node.open, node.closed, node.holiday) if t]
            if isinstance(node, Fulfillment):
                return [node.on_success, node.on_error, node.on_timeout]
            return []  # this node waits for the platform: no loop continues through it

        done: set[str] = set()
        reported: set[frozenset[str]] = set()

        def visit(node_id: str, path: list[str]) -> None:
            if node_id in path:
                loop = path[path.index(node_id) :]
                if frozenset(loop) not in reported:
                    reported.add(frozenset(loop))
                    route = " → ".join([*loop, node_id])
                    kinds = (
                        "say/branch"
                        if all(isinstance(nodes[n], Say | Branch) for n in loop)
                        else "straight-through (say, branch, set, hours, fulfillment)"
                    )
                    self.c.problem(
                        self.node_lines.get(node_id, 1),
                        f"node '{node_id}'",
                        f"{kinds} nodes loop back to '{node_id}' without waiting for the caller ({route}); expected a node that listens, transfers or ends on the way",
                    )
                return
            node = nodes.get(node_id)
            if node_id in done or node is None:
                return
            for target in successors(node):
                visit(target, [*path, node_id])
            done.add(node_id)

        for node_id in nodes:
            visit(node_id, [])


_REF_FIELDS = (
    "next",
    "default",
    "on_failure",
    "on_success",
    "on_error",
    "on_timeout",
    "open",
    "closed",
    "holiday",
)


def _renamed(node: Node, new_id: str, prefix: str) -> Node:
    """A copy of node with a new id and every node it names prefixed (for inlining)."""

    def rename(ref: str) -> str:
        return prefix + ref

    changes: dict[str, Any] = {"id": new_id}
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        if field.name in _REF_FIELDS and isinstance(value, str) and value:
            changes[field.name] = rename(value)
    if isinstance(node, Menu):
        changes["choices"] = tuple(
            dataclasses.replace(c, next=rename(c.next)) for c in node.choices
        )
    if isinstance(node, Branch):
        changes["cases"] = tuple(dataclasses.replace(c, next=rename(c.next)) for c in node.cases)
    if isinstance(node, Menu | Collect) and node.escalation.on_max:
        changes["escalation"] = dataclasses.replace(
            node.escalation, on_max=rename(node.escalation.on_max)
        )
    return dataclasses.replace(node, **changes)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _comparable(value: str) -> bool:
    """What lt/le/gt/ge can compare with: a number, ISO date, clock time or placeholder."""
    if "{" in value:
        return True
    if _ISO_DATE.match(value) or _CLOCK.match(value):
        return True
    try:
        return Decimal(value).is_finite()
    except ArithmeticError:
        return False


def _plain(value: Any) -> Any:
    """Turns the loader's line-aware containers back into plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_flows(directory: Path) -> dict[str, Flow]:
    """Loads every `*.yaml`/`*.yml` flow in a directory (not the routing file), by flow id,
    with the subflows in its `subflows/` folder.

    Raises:
        FlowError: with the problems of every invalid file, and duplicate flow ids.
    """
    flows: dict[str, Flow] = {}
    subflows, problems = _load_subflow_dir(directory / SUBFLOWS_DIR)
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        if path.stem == "routing":
            continue
        try:
            flow = load_flow_file(path, subflows)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        if flow.id in flows:
            problems.append(
                Problem(
                    str(path),
                    flow.line,
                    "flow",
                    f"flow id '{flow.id}' is also used by {flows[flow.id].source}",
                )
            )
        flows[flow.id] = flow
    if problems:
        raise FlowError(problems)
    return flows
