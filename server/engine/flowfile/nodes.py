"""One reader per node kind, and `READERS`: the table from a node's `type:` to its reader.

A reader gets the document reader (for the pieces node kinds share), the node's id, its
mapping and where it is (for messages), and returns the node, or None when it is too broken
to build (its problems are recorded).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from server.engine import conditions as condition_ops
from server.engine import hours
from server.engine.flow import (
    TRANSFER_FAILURES,
    AiGatherNode,
    AssistantNode,
    Branch,
    Case,
    Choice,
    Collect,
    Condition,
    Fulfillment,
    HangUp,
    HoursNode,
    Menu,
    Node,
    Option,
    PromptSpec,
    QueueStatusNode,
    RecordNode,
    Say,
    SetNode,
    SlotType,
    Transfer,
    TransferTarget,
    WaitNode,
)
from server.engine.flowfile.names import DONE, NAME
from server.engine.flowfile.subflows import Raw, Return, SubflowCall
from server.engine.flowfile.yaml_lines import LineList, LineMap, describe

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^\d{2}:\d{2}$")

if TYPE_CHECKING:
    from server.engine.flowfile.reader import FlowReader

_TRANSFER_KINDS = (
    "phone_number",
    "skill_queue",
    "skill_queue_name",
    "agent_id",
    "ivr_flow",
    "sip_uri",
)
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


def read_say(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    prompt = r.prompt(data, "prompt", where, required=True)
    barge_in = r.barge_in(data, where)
    if barge_in is not None:
        prompt = PromptSpec(prompt.items, barge_in, prompt.min_speech_ms)
    wait = r.c.get(data, "wait_for_playback", bool, where, default=False) or False
    return Say(node_id, prompt, r.ref(data, "next", where), wait)


def read_menu(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node | None:
    raw_choices = r.c.get(data, "choices", LineList, where, required=True) or LineList()
    choices: list[Choice] = []
    for index, (entry, line) in enumerate(zip(raw_choices, raw_choices.item_lines, strict=True)):
        cw = f"{where}.choices[{index}]"
        if not isinstance(entry, LineMap):
            r.c.problem(line, cw, f"got {describe(entry)}, expected a mapping")
            continue
        r.c.known_keys(entry, ("intent", "key", "keywords", "patterns", "next", "language"), cw)
        key = r.key(entry, cw)
        keywords, by_language = r.keywords(entry, cw)
        patterns = r.patterns(entry, cw)
        language = r.c.get(entry, "language", str, cw, default="") or ""
        if language and not r.known_language(language, r.c.line_of(entry, "language"), cw):
            language = ""
        if not key and not keywords and not patterns:
            r.c.problem(
                entry.line,
                cw,
                "neither 'key' nor 'keywords' nor 'patterns' (expected at least one)",
            )
        intent = r.c.get(entry, "intent", str, cw, required=True) or ""
        choices.append(
            Choice(intent, r.ref(entry, "next", cw), key, keywords, patterns, by_language, language)
        )
    keys = [choice.key for choice in choices if choice.key]
    if len(keys) != len(set(keys)):
        r.c.problem(
            raw_choices.line, f"{where}.choices", f"keys {keys} repeat (expected each key once)"
        )
    if not choices:
        r.c.problem(data.line, where, "no choices (expected at least one)")
        return None
    return Menu(
        node_id,
        r.prompt(data, "prompt", where, required=True),
        tuple(choices),
        r.escalation(data, where),
        r.c.get(data, "speech", bool, where, default=True) is not False,
        r.c.get(data, "nlu", bool, where, default=True) is not False,
        r.fuzzy(data, where),
    )


def read_collect(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node | None:
    slot = r.c.get(data, "slot", str, where, required=True) or ""
    r.declare_slot(data, slot, where)
    slot_type = r.enum(data, "slot_type", SlotType, where)
    if slot_type is None and "slot_type" not in data:
        r.c.problem(
            data.line,
            where,
            f"'slot_type' is missing (expected one of: {', '.join(t.value for t in SlotType)})",
        )
    pattern = r.c.get(data, "pattern", str, where, default="") or ""
    if pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            r.c.problem(
                r.c.line_of(data, "pattern"),
                f"{where}.pattern",
                f"invalid regular expression: {exc}",
            )
    elif slot_type is SlotType.REGEX:
        r.c.problem(data.line, where, "'pattern' is missing (a regex slot needs one)")
    min_length = r.positive(data, "min_length", where, 1)
    max_length = r.positive(data, "max_length", where, 32)
    if min_length > max_length:
        r.c.problem(data.line, where, f"min_length {min_length} > max_length {max_length}")
    terminator = r.c.get(data, "terminator", str, where, default="#") or ""
    if terminator not in ("", "#", "*"):
        r.c.problem(
            r.c.line_of(data, "terminator"),
            f"{where}.terminator",
            f"got '{terminator}', expected '#', '*' or ''",
        )
    options = _options(r, data, slot_type, where)
    low, high = _bounds(r, data, slot_type, where)
    country_code = r.c.get(data, "country_code", str, where, default="") or ""
    if country_code and (
        slot_type is not SlotType.E164 or not re.fullmatch(r"[1-9]\d{0,2}", country_code)
    ):
        r.c.problem(
            r.c.line_of(data, "country_code"),
            f"{where}.country_code",
            f"got '{country_code}', expected 1-3 digits (e.g. \"86\"), on an e164 slot",
        )
    default_keys = slot_type in _SLOT_TYPES_WITH_KEYS and (
        slot_type is not SlotType.CHOICE or any(option.key for option in options)
    )
    confirm = r.prompt(data, "confirm", where) if "confirm" in data else None
    return Collect(
        node_id,
        r.prompt(data, "prompt", where, required=True),
        slot,
        slot_type or SlotType.TEXT,
        r.ref(data, "next", where),
        min_length,
        max_length,
        pattern,
        r.prompt_list(data, "invalid", where),
        terminator,
        r.c.get(data, "keys", bool, where, default=default_keys) is True,
        r.c.get(data, "speech", bool, where, default=True) is not False,
        r.escalation(data, where),
        min_value=low,
        max_value=high,
        options=options,
        country_code=country_code,
        confirm=confirm,
        nlu=r.c.get(data, "nlu", bool, where, default=True) is not False,
        fuzzy_threshold=r.fuzzy(data, where),
    )


def _options(
    r: FlowReader, data: LineMap, slot_type: SlotType | None, where: str
) -> tuple[Option, ...]:
    """A choice slot's options: plain words, or {value, keywords, key, patterns}."""
    raw = r.c.get(data, "options", LineList, where)
    if raw is None:
        if slot_type is SlotType.CHOICE and "options" not in data:
            r.c.problem(data.line, where, "'options' is missing (a choice slot needs them)")
        return ()
    if slot_type is not SlotType.CHOICE:
        r.c.problem(
            r.c.line_of(data, "options"),
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
        if not isinstance(entry, LineMap):
            r.c.problem(line, ow, f"got {describe(entry)}, expected text or a mapping")
            continue
        r.c.known_keys(entry, ("value", "keywords", "key", "patterns"), ow)
        keywords, by_language = r.keywords(entry, ow)
        options.append(
            Option(
                r.c.get(entry, "value", str, ow, required=True) or "",
                keywords,
                r.key(entry, ow),
                r.patterns(entry, ow),
                by_language,
            )
        )
    values = [option.value for option in options]
    keys = [option.key for option in options if option.key]
    if len(values) != len(set(values)) or len(keys) != len(set(keys)):
        r.c.problem(raw.line, f"{where}.options", "values or keys repeat (expected each once)")
    if not options:
        r.c.problem(raw.line, f"{where}.options", "no options (expected at least one)")
    return tuple(options)


def _bounds(
    r: FlowReader, data: LineMap, slot_type: SlotType | None, where: str
) -> tuple[Decimal | None, Decimal | None]:
    found: list[Decimal | None] = []
    for key in ("min", "max"):
        value = r.c.get(data, key, float, where) if key in data else None
        if value is not None and slot_type not in (SlotType.INTEGER, SlotType.AMOUNT):
            r.c.problem(
                r.c.line_of(data, key),
                f"{where}.{key}",
                "only integer and amount slots have min and max",
            )
            value = None
        # Through str: 0.1 is read as the decimal it was written as, not the nearest float.
        found.append(None if value is None else Decimal(str(data[key])))
    low, high = found
    if low is not None and high is not None and low > high:
        r.c.problem(data.line, where, f"min {low} > max {high}")
    return low, high


def read_branch(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    raw_cases = r.c.get(data, "cases", LineList, where, required=True) or LineList()
    cases: list[Case] = []
    for index, (entry, line) in enumerate(zip(raw_cases, raw_cases.item_lines, strict=True)):
        cw = f"{where}.cases[{index}]"
        if not isinstance(entry, LineMap):
            r.c.problem(
                line, cw, f"got {describe(entry)}, expected a mapping with 'when' and 'next'"
            )
            continue
        r.c.known_keys(entry, ("when", "next"), cw)
        when = r.c.get(entry, "when", LineMap, cw, required=True) or LineMap()
        cases.append(Case(tuple(_conditions(r, when, f"{cw}.when")), r.ref(entry, "next", cw)))
    return Branch(node_id, tuple(cases), r.ref(data, "default", where))


def _conditions(r: FlowReader, when: LineMap, where: str) -> Iterator[Condition]:
    """`when: {slot_name: {equals: v}}`, or `{slot_name: v}` as a short form of equals."""
    for slot, test in when.items():
        line = r.c.line_of(when, slot)
        r.templates.append((line, where, "{" + slot + "}"))
        if not isinstance(test, LineMap):
            r.templates.append((line, f"{where}.{slot}", str(test)))
            yield Condition(slot, "equals", (str(test),))
            continue
        r.c.known_keys(test, condition_ops.OPS, f"{where}.{slot}")
        for op, value in test.items():
            if op not in condition_ops.OPS:
                continue
            op_line = test.key_lines.get(op, line)
            values = tuple(str(v) for v in value) if isinstance(value, list) else (str(value),)
            if op in condition_ops.PRESENCE_OPS:
                values = ()
            elif op in (*condition_ops.ORDER_OPS, "matches") and (isinstance(value, list | bool)):
                r.c.problem(
                    op_line,
                    f"{where}.{slot}.{op}",
                    f"got {describe(value)}, expected one {'pattern' if op == 'matches' else 'number, date or time'}",
                )
                continue
            elif op == "matches":
                if not r.regex(values[0], op_line, f"{where}.{slot}.matches"):
                    continue
            elif op in condition_ops.ORDER_OPS and not comparable(values[0]):
                r.c.problem(
                    op_line,
                    f"{where}.{slot}.{op}",
                    f"got '{values[0]}', expected a number, a date (2026-03-05), a time (09:30) or a {{placeholder}}",
                )
                continue
            if op != "matches":
                for text in values:
                    r.templates.append((op_line, f"{where}.{slot}.{op}", text))
            yield Condition(slot, op, values)


def read_transfer(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node | None:
    target = r.c.get(data, "target", LineMap, where, required=True)
    if target is None:
        return None
    r.c.known_keys(target, _TRANSFER_KINDS, f"{where}.target")
    kinds = [kind for kind in _TRANSFER_KINDS if kind in target]
    if len(kinds) != 1:
        r.c.problem(
            target.line,
            f"{where}.target",
            f"has {len(kinds)} targets, expected exactly one of: {', '.join(_TRANSFER_KINDS)}",
        )
        return None
    value = r.c.get(target, kinds[0], str, f"{where}.target", default="") or ""
    mode = r.c.get(data, "mode", str, where, default="blind")
    if mode not in ("blind", "parallel"):
        r.c.problem(
            r.c.line_of(data, "mode"),
            f"{where}.mode",
            f"got '{mode}', expected blind or parallel",
        )
    return Transfer(
        node_id,
        r.prompt(data, "prompt", where),
        TransferTarget(kinds[0], value),
        r.ref(data, "on_failure", where),
        parallel=mode == "parallel",
        monitored=r.c.get(data, "monitored", bool, where, default=False) is True,
        caller_id=r.c.get(data, "caller_id", str, where, default="") or "",
        timeout_ms=r.positive(data, "timeout_ms", where, 0, zero_ok=True),
        on_busy=r.ref(data, "on_busy", where, required=False),
        on_no_answer=r.ref(data, "on_no_answer", where, required=False),
        on_rejected=r.ref(data, "on_rejected", where, required=False),
        on_unreachable=r.ref(data, "on_unreachable", where, required=False),
    )


def read_hangup(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    reason = r.c.get(data, "reason", str, where, default="completed")
    if reason not in ("completed", "failed"):
        r.c.problem(
            r.c.line_of(data, "reason"),
            f"{where}.reason",
            f"got '{reason}', expected completed or failed",
        )
    return HangUp(node_id, r.prompt(data, "prompt", where), failed=reason == "failed")


def read_record(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    slot = r.c.get(data, "slot", str, where, required=True) or ""
    r.declare_slot(data, slot, where)
    return RecordNode(
        node_id,
        r.prompt(data, "prompt", where),
        slot,
        r.ref(data, "next", where),
        r.positive(data, "max_duration_ms", where, 60_000),
        r.positive(data, "end_silence_ms", where, 3_000, zero_ok=True),
        r.c.get(data, "beep", bool, where, default=True) is not False,
        r.c.get(data, "stop_key", str, where, default="#") or "",
    )


def read_wait(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    duration = r.c.get(data, "duration_ms", int, where, required=True) or 0
    if not 0 < duration <= 60_000:
        r.c.problem(
            r.c.line_of(data, "duration_ms"),
            f"{where}.duration_ms",
            f"got {duration}, expected 1-60000",
        )
    return WaitNode(node_id, duration, r.ref(data, "next", where))


def read_ai_gather(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    schema = r.c.get(data, "schema", LineMap, where, required=True) or LineMap()
    properties = schema.get("properties")
    if schema and (schema.get("type") != "object" or not isinstance(properties, dict)):
        r.c.problem(
            schema.line,
            f"{where}.schema",
            "expected a JSON schema with type: object and properties",
        )
    for name in properties if isinstance(properties, dict) else ():
        r.slots.add(str(name))
    if "greeting" not in data:
        r.c.problem(data.line, where, "'greeting' is missing (expected text)")
    greeting, greetings = r.text_by_language(data, "greeting", where, template=True)
    return AiGatherNode(
        node_id,
        greeting,
        plain(schema),
        r.ref(data, "next", where),
        r.ref(data, "on_failure", where),
        r.c.get(data, "voice", str, where, default="") or "",
        r.positive(data, "user_response_timeout_ms", where, 0, zero_ok=True),
        greetings,
    )


def read_set(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    values: list[tuple[str, str]] = []
    raw = r.c.get(data, "set", LineMap, where, default=LineMap()) or LineMap()
    for name, template in raw.items():
        line = raw.key_lines.get(name, raw.line)
        if r.assignable(name, line, f"{where}.set"):
            if isinstance(template, dict | list) or template is None:
                r.c.problem(line, f"{where}.set.{name}", f"got {describe(template)}, expected text")
                continue
            text = str(template).lower() if isinstance(template, bool) else str(template)
            r.templates.append((line, f"{where}.set.{name}", text))
            values.append((name, text))
    raw_clear = r.c.get(data, "clear", LineList, where, default=LineList()) or LineList()
    clear: list[str] = []
    for name, line in zip(raw_clear, raw_clear.item_lines, strict=True):
        if r.assignable(str(name), line, f"{where}.clear"):
            clear.append(str(name))
    if not values and not clear:
        r.c.problem(data.line, where, "nothing to set or clear (expected 'set' or 'clear')")
    both = sorted({name for name, _ in values} & set(clear))
    if both:
        r.c.problem(data.line, where, f"{', '.join(both)} both set and cleared")
    return SetNode(node_id, tuple(values), tuple(clear), r.ref(data, "next", where))


def read_fulfillment(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    raw_args = r.c.get(data, "args", LineMap, where, default=LineMap()) or LineMap()
    args: list[tuple[str, str]] = []
    for name, template in raw_args.items():
        line = raw_args.key_lines.get(name, raw_args.line)
        if isinstance(template, dict | list) or template is None:
            r.c.problem(line, f"{where}.args.{name}", f"got {describe(template)}, expected text")
            continue
        text = str(template).lower() if isinstance(template, bool) else str(template)
        r.templates.append((line, f"{where}.args.{name}", text))
        args.append((str(name), text))
    returned = r.c.get(data, "slots", LineList, where, default=LineList()) or LineList()
    for name, line in zip(returned, returned.item_lines, strict=True):
        if not NAME.match(str(name)):
            r.c.problem(line, f"{where}.slots", f"'{name}' is not a valid slot name")
        r.slots.add(str(name))
    on_error = r.ref(data, "on_error", where)
    return Fulfillment(
        node_id,
        r.url(data, where),
        r.ref(data, "on_success", where),
        on_error,
        r.ref(data, "on_timeout", where, required=False) or on_error,
        r.timeout(data, where),
        tuple(args),
    )


def read_hours(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    weekly: list[tuple[hours.Span, ...] | None] = [None] * 7
    schedule = r.c.get(data, "schedule", LineMap, where, required=True) or LineMap()
    for days_text, spans_raw in schedule.items():
        line = schedule.key_lines.get(days_text, schedule.line)
        sw = f"{where}.schedule.{days_text}"
        days = [day for part in str(days_text).split(",") for day in (hours.parse_days(part) or ())]
        if not days or any(hours.parse_days(part) is None for part in str(days_text).split(",")):
            r.c.problem(
                line,
                sw,
                "expected days such as mon, mon-fri or sat,sun (mon tue wed thu fri sat sun)",
            )
            continue
        spans = _spans(r, spans_raw, line, sw)
        for day in days:
            if weekly[day] is not None:
                r.c.problem(line, sw, f"{hours.WEEKDAYS[day]} is given twice")
            weekly[day] = spans
    holidays: set[dt.date] = set()
    raw_holidays = r.c.get(data, "holidays", LineList, where, default=LineList()) or LineList()
    for entry, line in zip(raw_holidays, raw_holidays.item_lines, strict=True):
        holidays.update(_dates(r, entry, line, f"{where}.holidays"))
    special: list[tuple[dt.date, tuple[hours.Span, ...]]] = []
    raw_special = r.c.get(data, "special_days", LineMap, where, default=LineMap()) or LineMap()
    for day_text, spans_raw in raw_special.items():
        line = raw_special.key_lines.get(day_text, raw_special.line)
        for special_day in _dates(r, day_text, line, f"{where}.special_days"):
            special.append(
                (special_day, _spans(r, spans_raw, line, f"{where}.special_days.{day_text}"))
            )
    return HoursNode(
        node_id,
        hours.Schedule(
            tuple(spans or () for spans in weekly),
            frozenset(holidays),
            tuple(sorted(special)),
        ),
        r.ref(data, "open", where),
        r.ref(data, "closed", where),
        r.ref(data, "holiday", where, required=False),
        r.timezone(data, where),
    )


def _spans(r: FlowReader, raw: Any, line: int, where: str) -> tuple[hours.Span, ...]:
    """ "09:00-18:00", a list of those, or "closed" / [] for none."""
    if raw is None or raw == "closed":
        return ()
    entries = list(raw) if isinstance(raw, list) else [raw]
    spans: list[hours.Span] = []
    for entry in entries:
        span = hours.parse_span(str(entry)) if isinstance(entry, str) else None
        if span is None:
            r.c.problem(
                line,
                where,
                f'got {describe(entry)}, expected a time span such as "09:00-18:00" (quoted)',
            )
            continue
        spans.append(span)
    return tuple(spans)


def _dates(r: FlowReader, raw: Any, line: int, where: str) -> list[dt.date]:
    """A date (YAML date or "2026-10-01") or an inclusive range "2026-10-01..2026-10-07"."""
    if isinstance(raw, dt.date):
        return [raw]
    text = str(raw) if isinstance(raw, str) else ""
    first_text, dots, last_text = text.partition("..")
    try:
        first = dt.date.fromisoformat(first_text.strip())
        last = dt.date.fromisoformat(last_text.strip()) if dots else first
    except ValueError:
        r.c.problem(
            line,
            where,
            f"got {describe(raw)}, expected a date 2026-10-01 or a range 2026-10-01..2026-10-07",
        )
        return []
    if not 0 <= (last - first).days <= 366:
        r.c.problem(line, where, f"range {text} runs backwards or is longer than a year")
        return []
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def read_subflow(r: FlowReader, node_id: str, data: LineMap, where: str) -> Raw | None:
    name = r.c.get(data, "flow", str, where, required=True) or ""
    next_node = r.ref(data, "next", where)
    # Not `on:` — YAML reads an unquoted `on` as the boolean true.
    raw_on = r.c.get(data, "outcomes", LineMap, where, default=LineMap()) or LineMap()
    targets = {DONE: next_node}
    for outcome in raw_on:
        targets[str(outcome)] = r.ref(raw_on, str(outcome), f"{where}.outcomes")
    if not name:
        return None
    found = r.resolve(name)
    if isinstance(found, str):
        r.c.problem(r.c.line_of(data, "flow"), f"{where}.flow", found)
        # Stands in for the subflow, so that nodes leading here are not reported too.
        return Branch(node_id, (), next_node)
    for outcome in sorted(found.outcomes - set(targets)):
        r.c.problem(
            data.line,
            where,
            f"subflow '{name}' may return '{outcome}' (expected a target for it under 'outcomes')",
        )
    for outcome in sorted(set(raw_on) - found.outcomes):
        r.c.problem(
            raw_on.key_lines.get(outcome, raw_on.line),
            f"{where}.outcomes",
            f"subflow '{name}' never returns '{outcome}' (it returns: {', '.join(sorted(found.outcomes))})",
        )
    r.slots.update(found.slots)
    return SubflowCall(node_id, found, targets)


def read_return(r: FlowReader, node_id: str, data: LineMap, where: str) -> Raw:
    outcome = r.c.get(data, "outcome", str, where, default=DONE) or DONE
    if not NAME.match(outcome):
        r.c.problem(
            r.c.line_of(data, "outcome"),
            f"{where}.outcome",
            f"'{outcome}' is not a valid outcome name (expected lowercase letters, digits, '_')",
        )
    r.outcomes.add(outcome)
    return Return(node_id, outcome)


def comparable(value: str) -> bool:
    """What lt/le/gt/ge can compare with: a number, ISO date, clock time or placeholder."""
    if "{" in value:
        return True
    if _ISO_DATE.match(value) or _CLOCK.match(value):
        return True
    try:
        return Decimal(value).is_finite()
    except ArithmeticError:
        return False


def plain(value: Any) -> Any:
    """Turns the loader's line-aware containers back into plain dicts and lists."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


_QUEUE_KINDS = ("current_queue", "skill_queue", "agent_id")


def read_queue_status(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node | None:
    queue = r.c.get(data, "queue", LineMap, where, required=True)
    next_node = r.ref(data, "next", where)
    on_unavailable = r.ref(data, "on_unavailable", where, required=False) or next_node
    if queue is None:
        return None
    qw = f"{where}.queue"
    r.c.known_keys(queue, _QUEUE_KINDS, qw)
    kinds = [kind for kind in _QUEUE_KINDS if kind in queue]
    if len(kinds) != 1:
        r.c.problem(
            queue.line,
            qw,
            f"has {len(kinds)} queues, expected exactly one of: {', '.join(_QUEUE_KINDS)}",
        )
        return None
    if kinds[0] == "current_queue":
        if r.c.get(queue, "current_queue", bool, qw) is not True:
            r.c.problem(r.c.line_of(queue, "current_queue"), qw, "expected current_queue: true")
        value = ""
    else:
        value = r.c.get(queue, kinds[0], str, qw, required=True) or ""
        if not value:
            r.c.problem(r.c.line_of(queue, kinds[0]), f"{qw}.{kinds[0]}", "expected an id")
    return QueueStatusNode(node_id, TransferTarget(kinds[0], value), next_node, on_unavailable)


def read_assistant(r: FlowReader, node_id: str, data: LineMap, where: str) -> Node:
    texts: dict[str, str] = {}
    for key in ("assistant_id", "instructions"):
        text = r.c.get(data, key, str, where, default="", required=key == "assistant_id") or ""
        if text:
            r.templates.append((r.c.line_of(data, key), f"{where}.{key}", text))
        texts[key] = text
    greeting, greetings = r.text_by_language(data, "greeting", where, template=True)
    raw_context = r.c.get(data, "context", LineList, where, default=LineList()) or LineList()
    context: list[str] = []
    for name, line in zip(raw_context, raw_context.item_lines, strict=True):
        # Checked as a placeholder would be: a slot the flow fills or declares.
        r.templates.append((line, f"{where}.context", "{" + str(name) + "}"))
        context.append(str(name))
    next_node = r.ref(data, "next", where)
    return AssistantNode(
        node_id,
        texts["assistant_id"],
        next_node,
        r.ref(data, "on_unavailable", where, required=False) or next_node,
        greeting,
        texts["instructions"],
        tuple(context),
        greetings,
    )


@dataclass(frozen=True, slots=True)
class NodeReader:
    """How one node kind is read: the fields it allows besides `type`, and its reader."""

    keys: tuple[str, ...]
    read: Callable[[FlowReader, str, LineMap, str], Raw | None]


_LISTENING = (
    "no_input",
    "no_match",
    "max_no_input",
    "max_no_match",
    "on_max",
    "on_max_no_input",
    "on_max_no_match",
    "nlu",
    "fuzzy_threshold",
)
READERS: dict[str, NodeReader] = {
    "say": NodeReader(("prompt", "next", "wait_for_playback", "barge_in"), read_say),
    "menu": NodeReader(("prompt", "choices", "speech", *_LISTENING), read_menu),
    "collect": NodeReader(
        ("prompt", "slot", "slot_type", "next", "min_length", "max_length", "pattern", "invalid",
         "terminator", "keys", "speech", *_LISTENING, "min", "max", "options", "country_code",
         "confirm"),
        read_collect,
    ),
    "branch": NodeReader(("cases", "default"), read_branch),
    "transfer": NodeReader(
        ("prompt", "target", "mode", "monitored", "caller_id", "timeout_ms", "on_failure",
         *(f"on_{failure}" for failure in TRANSFER_FAILURES)),
        read_transfer,
    ),
    "hangup": NodeReader(("prompt", "reason"), read_hangup),
    "record": NodeReader(
        ("prompt", "slot", "next", "max_duration_ms", "end_silence_ms", "beep", "stop_key"),
        read_record,
    ),
    "wait": NodeReader(("duration_ms", "next"), read_wait),
    "ai_gather": NodeReader(
        ("greeting", "schema", "next", "on_failure", "voice", "user_response_timeout_ms"),
        read_ai_gather,
    ),
    "set": NodeReader(("set", "clear", "next"), read_set),
    "fulfillment": NodeReader(
        ("url", "timeout_ms", "args", "slots", "on_success", "on_error", "on_timeout"),
        read_fulfillment,
    ),
    "hours": NodeReader(
        ("timezone", "schedule", "holidays", "special_days", "open", "closed", "holiday"),
        read_hours,
    ),
    "queue_status": NodeReader(("queue", "next", "on_unavailable"), read_queue_status),
    "assistant": NodeReader(
        ("assistant_id", "greeting", "instructions", "context", "next", "on_unavailable"),
        read_assistant,
    ),
    "subflow": NodeReader(("flow", "next", "outcomes"), read_subflow),
    "return": NodeReader(("outcome",), read_return),
}  # fmt: skip
