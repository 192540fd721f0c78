"""The loader on the newer flow syntax: what valid flows turn into, and the file:line errors for
each new kind of mistake (time zones, synonyms, NLU, patterns, slot types, set, fulfillment,
hours, conditions, loops through straight-through nodes)."""

from __future__ import annotations

import datetime as dt
import textwrap
from decimal import Decimal

import pytest

from server.engine.flow import (
    Collect,
    Condition,
    Fulfillment,
    HoursNode,
    Menu,
    NluConfig,
    Option,
    SetNode,
    SlotType,
)
from server.engine.flowfile import FlowError, Problem, parse_flow
from server.engine.hours import Span

# A valid flow; each case adds top-level fields or nodes after line 8.
_BASE = """\
flow: demo
version: "1"
start: bye
defaults:
  on_max_attempts: bye
nodes:
  bye: {type: hangup, prompt: Goodbye.}
"""


def _flow_text(top: str = "", nodes: str = "") -> str:
    return _BASE + textwrap.indent(textwrap.dedent(nodes), "  ") + textwrap.dedent(top)


def _problems(top: str = "", nodes: str = "") -> list[str]:
    with pytest.raises(FlowError) as raised:
        parse_flow(_flow_text(top, nodes), "demo.yaml")
    return [_short(problem) for problem in raised.value.problems]


def _short(problem: Problem) -> str:
    return f"{problem.line}: {problem.where}: {problem.message}"


def test_a_flow_with_every_new_feature_reads_into_the_model() -> None:
    flow = parse_flow(
        _flow_text(
            top="""\
            timezone: Asia/Shanghai
            synonyms:
              话费: [电话费]
            nlu: {url: "https://nlu.example.com/parse", timeout_ms: 250, min_confidence: 0.7}
            """,
            nodes="""\
            menu:
              type: menu
              prompt: 请选择
              nlu: false
              fuzzy_threshold: 90
              choices:
                - {intent: bill, keywords: [话费], patterns: ["查.{0,4}账单"], next: bye}
            size:
              type: collect
              slot: size
              slot_type: choice
              options: [{value: large, keywords: [大杯], key: "2"}, small]
              prompt: 大杯还是小杯
              confirm: 您要的是{size}
              next: bye
            money:
              type: collect
              slot: money
              slot_type: amount
              min: 0.01
              max: 500
              next: bye
              prompt: 金额
            tag: {type: set, set: {tier: gold, params.vip: "1"}, clear: [money], next: bye}
            lookup:
              type: fulfillment
              url: http://crm.internal/balance
              args: {kind: mobile}
              slots: [balance]
              on_success: bye
              on_error: bye
            office:
              type: hours
              schedule: {mon-fri: ["09:00-18:00"], sat: "10:00-12:00"}
              holidays: [2026-10-01..2026-10-03]
              special_days: {"2026-09-27": "09:00-18:00"}
              open: bye
              closed: bye
            check:
              type: branch
              cases:
                - {when: {money: {gt: 100, matches: "\\\\d+\\\\.\\\\d{2}"}, balance: {le: "{money}"}}, next: bye}
              default: bye
            """,
        ),
        "demo.yaml",
    )
    assert flow.timezone == "Asia/Shanghai"
    assert flow.synonyms == {"话费": ("话费", "电话费"), "电话费": ("话费", "电话费")}
    assert flow.nlu == NluConfig("https://nlu.example.com/parse", 250, 0.7)
    assert flow.defaults.fuzzy_threshold == 87
    menu = flow.nodes["menu"]
    assert isinstance(menu, Menu)
    assert (menu.nlu, menu.fuzzy_threshold, menu.choices[0].patterns) == (
        False,
        90,
        ("查.{0,4}账单",),
    )
    size = flow.nodes["size"]
    assert isinstance(size, Collect)
    assert size.options == (Option("large", ("大杯",), "2"), Option("small"))
    assert size.keys is True
    assert size.confirm is not None
    money = flow.nodes["money"]
    assert isinstance(money, Collect)
    assert (money.min_value, money.max_value, money.keys) == (Decimal("0.01"), Decimal(500), True)
    assert flow.nodes["tag"] == SetNode(
        "tag", (("tier", "gold"), ("params.vip", "1")), ("money",), "bye"
    )
    assert flow.nodes["lookup"] == Fulfillment(
        "lookup", "http://crm.internal/balance", "bye", "bye", "bye", 300, (("kind", "mobile"),)
    )
    office = flow.nodes["office"]
    assert isinstance(office, HoursNode)
    assert office.schedule.weekly[0] == (Span(540, 1080),)
    assert office.schedule.weekly[5] == (Span(600, 720),)
    assert office.schedule.weekly[6] == ()
    assert office.schedule.holidays == frozenset(
        {dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)}
    )
    assert office.schedule.special == ((dt.date(2026, 9, 27), (Span(540, 1080),)),)
    check = flow.nodes["check"]
    assert check.cases[0].conditions == (  # type: ignore[union-attr]
        Condition("money", "gt", ("100",)),
        Condition("money", "matches", (r"\d+\.\d{2}",)),
        Condition("balance", "le", ("{money}",)),
    )


@pytest.mark.parametrize(
    ("top", "nodes", "expected"),
    [
        (
            "timezone: Mars/Olympus\n",
            "",
            "8: flow.timezone: unknown time zone 'Mars/Olympus' (expected an IANA name such as Asia/Shanghai)",
        ),
        (
            "defaults2: 1\n",
            "",
            "8: flow: unknown field 'defaults2' (expected one of: flow, version, description, language, languages, voice, timezone, start, defaults, commands, nodes, slots, synonyms, nlu)",
        ),
        (
            "synonyms:\n  话费: [电话费]\n  账单: [电话费]\n",
            "",
            "10: flow.synonyms: '电话费' is in two synonym groups (expected each word in one)",
        ),
        ("synonyms: [[话费]]\n", "", "8: flow.synonyms: expected a list of at least two words"),
        (
            "nlu: {url: ftp://x, timeout_ms: 20000}\n",
            "",
            "8: flow.nlu.url: got 'ftp://x', expected an http:// or https:// URL",
        ),
        (
            "nlu: {url: 'http://x', timeout_ms: 20000}\n",
            "",
            "8: flow.nlu.timeout_ms: got 20000, expected at most 10000",
        ),
        (
            "nlu: {url: 'http://x', min_confidence: 2}\n",
            "",
            "8: flow.nlu.min_confidence: got 2, expected 0 to 1",
        ),
        (
            "",
            "m: {type: menu, prompt: p, fuzzy_threshold: 120, choices: [{intent: a, key: '1', next: bye}]}\n",
            "8: node 'm'.fuzzy_threshold: got 120, expected 0 (off) to 100",
        ),
        (
            "",
            "m: {type: menu, prompt: p, choices: [{intent: a, patterns: ['(unclosed'], next: bye}]}\n",
            "8: node 'm'.choices[0].patterns: invalid regular expression '(unclosed': missing ), unterminated subpattern at position 0",
        ),
        (
            "",
            "m: {type: menu, prompt: p, choices: [{intent: a, next: bye}]}\n",
            "8: node 'm'.choices[0]: neither 'key' nor 'keywords' nor 'patterns' (expected at least one)",
        ),
        (
            "",
            "c: {type: collect, slot: s, slot_type: choice, prompt: p, next: bye}\n",
            "8: node 'c': 'options' is missing (a choice slot needs them)",
        ),
        (
            "",
            "c: {type: collect, slot: s, slot_type: text, options: [a], prompt: p, next: bye}\n",
            "8: node 'c'.options: only a choice slot has options (expected slot_type: choice)",
        ),
        (
            "",
            "c: {type: collect, slot: s, slot_type: choice, options: [a, a], prompt: p, next: bye}\n",
            "8: node 'c'.options: values or keys repeat (expected each once)",
        ),
        (
            "",
            "c: {type: collect, slot: s, slot_type: regex, prompt: p, next: bye}\n",
            "8: node 'c': 'pattern' is missing (a regex slot needs one)",
        ),
        (
            "",
            "c: {type: collect, slot: s, slot_type: digits, min: 1, prompt: p, next: bye}\n",
            "8: node 'c'.min: only integer and amount slots have min and max",
        ),
        (
            "",
            "c: {type: collect, slot: s, slot_type: integer, min: 5, max: 1, prompt: p, next: bye}\n",
            "8: node 'c': min 5 > max 1",
        ),
        (
            "",
            "c: {type: collect, slot: s, slot_type: e164, country_code: '+86', prompt: p, next: bye}\n",
            "8: node 'c'.country_code: got '+86', expected 1-3 digits (e.g. \"86\"), on an e164 slot",
        ),
        (
            "",
            "s: {type: set, set: {Bad: 1}, next: bye}\n",
            "8: node 's'.set: 'Bad' is not a slot name or params.NAME (expected lowercase letters, digits, '_')",
        ),
        (
            "",
            "s: {type: set, set: {a: 1}, clear: [a], next: bye}\n",
            "8: node 's': a both set and cleared",
        ),
        (
            "",
            "s: {type: set, next: bye}\n",
            "8: node 's': nothing to set or clear (expected 'set' or 'clear')",
        ),
        (
            "",
            "s: {type: set, set: {a: '{nope}'}, next: bye}\n",
            "8: node 's'.set.a: unknown placeholder '{nope}' (expected one of: a, call.callee, call.caller, call.date, call.time, params.NAME, queue.position/wait_minutes/agents_online/agents_idle, assistant.reason/duration_ms/transcript, transfer.failure)",
        ),
        (
            "",
            "f: {type: fulfillment, url: 'crm/balance', on_success: bye, on_error: bye}\n",
            "8: node 'f'.url: got 'crm/balance', expected an http:// or https:// URL",
        ),
        (
            "",
            "f: {type: fulfillment, url: 'http://x', on_success: bye}\n",
            "8: node 'f': 'on_error' is missing (expected text)",
        ),
        (
            "",
            "h: {type: hours, schedule: {mon-fri: '9-18'}, open: bye, closed: bye}\n",
            "8: node 'h'.schedule.mon-fri: got str '9-18', expected a time span such as \"09:00-18:00\" (quoted)",
        ),
        (
            "",
            "h: {type: hours, schedule: {weekdays: '09:00-18:00'}, open: bye, closed: bye}\n",
            "8: node 'h'.schedule.weekdays: expected days such as mon, mon-fri or sat,sun (mon tue wed thu fri sat sun)",
        ),
        (
            "",
            "h: {type: hours, schedule: {mon-fri: '09:00-18:00', fri: closed}, open: bye, closed: bye}\n",
            "8: node 'h'.schedule.fri: fri is given twice",
        ),
        (
            "",
            "h: {type: hours, schedule: {}, holidays: [tomorrow], open: bye, closed: bye}\n",
            "8: node 'h'.holidays: got str 'tomorrow', expected a date 2026-10-01 or a range 2026-10-01..2026-10-07",
        ),
        (
            "",
            "h: {type: hours, schedule: {}, timezone: Nowhere, open: bye, closed: bye}\n",
            "8: node 'h'.timezone: unknown time zone 'Nowhere' (expected an IANA name such as Asia/Shanghai)",
        ),
        (
            "",
            "b: {type: branch, cases: [{when: {x: {lt: ten}}, next: bye}], default: bye}\n",
            "8: node 'b'.cases[0].when.x.lt: got 'ten', expected a number, a date (2026-03-05), a time (09:30) or a {placeholder}",
        ),
        (
            "",
            "b: {type: branch, cases: [{when: {x: {matches: '('}}, next: bye}], default: bye}\n",
            "8: node 'b'.cases[0].when.x.matches: invalid regular expression '(': missing ), unterminated subpattern at position 0",
        ),
        (
            "",
            "b: {type: branch, cases: [{when: {x: {gt: [1, 2]}}, next: bye}], default: bye}\n",
            "8: node 'b'.cases[0].when.x.gt: got a list, expected one number, date or time",
        ),
    ],
)
def test_new_syntax_errors_point_at_their_line(top: str, nodes: str, expected: str) -> None:
    problems = _problems(top, nodes)
    assert expected in problems, problems


def test_a_loop_through_a_fulfillment_is_rejected_like_a_say_loop() -> None:
    problems = _problems(
        nodes="""\
        retry:
          type: fulfillment
          url: http://crm.internal/x
          on_success: bye
          on_error: sorry
        sorry: {type: say, prompt: 稍等, next: retry}
        """
    )
    assert problems == [
        "8: node 'retry': straight-through (say, branch, set, hours, fulfillment) nodes loop back to 'retry' without waiting for the caller (retry → sorry → retry); expected a node that listens, transfers or ends on the way"
    ]


def test_a_fulfillment_declares_the_slots_it_returns_for_templates() -> None:
    flow = parse_flow(
        _flow_text(
            nodes="""\
            lookup:
              type: fulfillment
              url: http://crm.internal/x
              slots: [balance]
              on_success: say
              on_error: bye
            say: {type: say, prompt: "余额{balance}", next: bye}
            """
        ),
        "demo.yaml",
    )
    assert flow.nodes["lookup"].on_timeout == "bye"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("slot_type", "keys"),
    [
        ("integer", True),
        ("amount", True),
        ("mobile_cn", True),
        ("e164", True),
        ("date", False),
        ("time", False),
        ("regex", False),
        ("text", False),
    ],
)
def test_keys_default_by_slot_type(slot_type: str, keys: bool) -> None:
    pattern = ", pattern: x" if slot_type == "regex" else ""
    flow = parse_flow(
        _flow_text(
            nodes=f"c: {{type: collect, slot: s, slot_type: {slot_type}, prompt: p, next: bye{pattern}}}\n"
        ),
        "demo.yaml",
    )
    node = flow.nodes["c"]
    assert isinstance(node, Collect)
    assert node.slot_type is SlotType(slot_type)
    assert node.keys is keys
