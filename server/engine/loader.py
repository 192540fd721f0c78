"""Loading flow files (YAML) into validated `Flow` objects, with errors that point at lines.

Every problem is reported as `file:line: where: what is wrong (expected ...)`, all of them at
once, so an author fixes a flow in one pass. The server refuses to start on any of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

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
    HangUp,
    Menu,
    Node,
    PromptItem,
    PromptSpec,
    RecordNode,
    Say,
    SlotType,
    Transfer,
    TransferTarget,
    WaitNode,
)

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
_CONDITION_OPS = ("equals", "not_equals", "one_of", "present", "absent")
_CALL_FIELDS = ("call.caller", "call.callee")
MAX_FLOW_FILE_BYTES = 4 * 1024 * 1024

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


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and sequences carry line numbers."""


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


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_list)


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


def load_flow_file(path: Path) -> Flow:
    """Loads and validates one flow file.

    Raises:
        FlowError: with every problem found, each pointing at a line of the file.
    """
    name = str(path)
    size = path.stat().st_size
    if size > MAX_FLOW_FILE_BYTES:
        raise FlowError(
            [Problem(name, 1, "file", f"{size} bytes, expected at most {MAX_FLOW_FILE_BYTES}")]
        )
    return parse_flow(path.read_text(encoding="utf-8"), name)


def parse_flow(text: str, file: str = "<flow>") -> Flow:
    """Parses and validates flow YAML text; `file` names it in error messages."""
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except _DuplicateKeyError as exc:
        message = f"defined twice (first at line {exc.first_line}); expected each key once"
        raise FlowError([Problem(file, exc.line, f"key '{exc.key}'", message)]) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise FlowError([Problem(file, line, "yaml", str(exc).replace("\n", " "))]) from exc
    if not isinstance(data, _Map):
        raise FlowError([Problem(file, 1, "file", f"got {_describe(data)}, expected a mapping")])
    checker = _Checker(file)
    flow = _FlowReader(checker, data).read()
    if checker.problems or flow is None:
        raise FlowError(checker.problems)
    return flow


_TOP_KEYS = (
    "flow",
    "version",
    "description",
    "language",
    "voice",
    "start",
    "defaults",
    "commands",
    "nodes",
    "slots",
)
_NODE_KEYS: dict[str, tuple[str, ...]] = {
    "say": ("type", "prompt", "next", "wait_for_playback", "barge_in"),
    "menu": ("type", "prompt", "choices", "speech", "no_input", "no_match", "max_no_input", "max_no_match", "on_max"),
    "collect": (
        "type", "prompt", "slot", "slot_type", "next", "min_length", "max_length", "pattern",
        "invalid", "terminator", "keys", "speech", "no_input", "no_match", "max_no_input",
        "max_no_match", "on_max",
    ),
    "branch": ("type", "cases", "default"),
    "transfer": ("type", "prompt", "target", "mode", "monitored", "caller_id", "timeout_ms", "on_failure"),
    "hangup": ("type", "prompt", "reason"),
    "record": ("type", "prompt", "slot", "next", "max_duration_ms", "end_silence_ms", "beep", "stop_key"),
    "wait": ("type", "duration_ms", "next"),
    "ai_gather": ("type", "greeting", "schema", "next", "on_failure", "voice", "user_response_timeout_ms"),
}  # fmt: skip


class _FlowReader:
    """Builds a Flow from a parsed document, then checks references across it."""

    def __init__(self, checker: _Checker, data: _Map) -> None:
        self.c = checker
        self.data = data
        self.references: list[tuple[int, str, str]] = []  # (line, where, node id)
        self.templates: list[tuple[int, str, str]] = []  # (line, where, text)
        self.slots: set[str] = set()
        self.node_lines: dict[str, int] = {}

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
        declared = c.get(data, "slots", _List, "flow", default=_List()) or _List()
        self.slots.update(str(slot) for slot in declared)
        start = c.get(data, "start", str, "flow", required=True) or ""
        if start:
            self.references.append((c.line_of(data, "start"), "flow.start", start))
        defaults = self._defaults(c.get(data, "defaults", _Map, "flow", required=True))
        nodes = self._nodes(c.get(data, "nodes", _Map, "flow", required=True))
        commands = self._commands(
            c.get(data, "commands", _List, "flow", default=_List()) or _List()
        )
        self._check_references(nodes)
        self._check_templates()
        self._check_say_cycles(nodes)
        if defaults is None:
            return None
        flow_line = c.line_of(data, "flow")
        return Flow(
            flow_id, version, language, voice, start, defaults, commands, nodes, c.file, flow_line
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
             "max_no_input", "max_no_match", "max_failures", "on_failure_budget", "no_input", "no_match"),
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
        )

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

    def _nodes(self, data: _Map | None) -> dict[str, Node]:
        nodes: dict[str, Node] = {}
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

    def _node(self, node_id: str, data: _Map, where: str) -> Node | None:
        kind = self.c.get(data, "type", str, where, required=True)
        if kind is None:
            return None
        if kind not in _NODE_KEYS:
            self.c.problem(
                self.c.line_of(data, "type"),
                f"{where}.type",
                f"unknown node type '{kind}' (expected one of: {', '.join(_NODE_KEYS)})",
            )
            return None
        self.c.known_keys(data, _NODE_KEYS[kind], where)
        builder: Callable[[str, _Map, str], Node | None] = getattr(self, f"_node_{kind}")
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
            self.c.known_keys(entry, ("intent", "key", "keywords", "next"), cw)
            key = self.c.get(entry, "key", str, cw, default="") or ""
            if key and (len(key) != 1 or key not in _KEYS):
                self.c.problem(
                    self.c.line_of(entry, "key"),
                    f"{cw}.key",
                    f"got '{key}', expected one key of {_KEYS}",
                )
            keywords = tuple(
                str(k) for k in (self.c.get(entry, "keywords", _List, cw, default=_List()) or ())
            )
            if not key and not keywords:
                self.c.problem(
                    entry.line, cw, "neither 'key' nor 'keywords' (expected at least one)"
                )
            intent = self.c.get(entry, "intent", str, cw, required=True) or ""
            choices.append(Choice(intent, self._ref(entry, "next", cw), key, keywords))
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
        default_keys = slot_type in (SlotType.DIGITS, SlotType.NUMBER, SlotType.YES_NO)
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
        )

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
                yield Condition(slot, "equals", (str(test),))
                continue
            self.c.known_keys(test, _CONDITION_OPS, f"{where}.{slot}")
            for op, value in test.items():
                if op not in _CONDITION_OPS:
                    continue
                values = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
                yield Condition(slot, op, values if op not in ("present", "absent") else ())

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
            self.c.known_keys(entry, ("intent", "keywords", "goto", "repeat", "key"), where)
            keywords = tuple(
                str(k) for k in (self.c.get(entry, "keywords", _List, where, required=True) or ())
            )
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
                )
            )
        return tuple(commands)

    # -- whole-flow checks ----------------------------------------------------------------

    def _check_references(self, nodes: dict[str, Node]) -> None:
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

    def _check_say_cycles(self, nodes: dict[str, Node]) -> None:
        """A loop of say/branch nodes would never reach the platform: reject it, once per loop."""

        def successors(node: Node) -> list[str]:
            if isinstance(node, Say) and not node.wait_for_playback:
                return [node.next]
            if isinstance(node, Branch):
                return [case.next for case in node.cases] + [node.default]
            return []  # this node waits for the platform: no loop continues through it

        done: set[str] = set()
        reported: set[frozenset[str]] = set()

        def visit(node_id: str, path: list[str]) -> None:
            if node_id in path:
                loop = path[path.index(node_id) :]
                if frozenset(loop) not in reported:
                    reported.add(frozenset(loop))
                    route = " → ".join([*loop, node_id])
                    self.c.problem(
                        self.node_lines.get(node_id, 1),
                        f"node '{node_id}'",
                        f"say/branch nodes loop back to '{node_id}' without waiting for the caller ({route}); expected a node that listens, transfers or ends on the way",
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


def _plain(value: Any) -> Any:
    """Turns the loader's line-aware containers back into plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def load_flows(directory: Path) -> dict[str, Flow]:
    """Loads every `*.yaml`/`*.yml` flow in a directory (not the routing file), by flow id.

    Raises:
        FlowError: with the problems of every invalid file, and duplicate flow ids.
    """
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        if path.stem == "routing":
            continue
        try:
            flow = load_flow_file(path)
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
