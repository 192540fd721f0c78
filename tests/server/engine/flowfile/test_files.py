"""Tests of the flow loader: the demo flows load, and broken flows fail with errors that point at
the right file, line and field and say what was expected."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.engine.flow import (
    BargeIn,
    Branch,
    Collect,
    Condition,
    HangUp,
    Menu,
    PromptItem,
    PromptSpec,
    Say,
    SlotType,
    Transfer,
    TransferTarget,
)
from server.engine.flowfile import (
    MAX_FLOW_FILE_BYTES,
    FlowError,
    Problem,
    load_flow_file,
    load_flows,
    parse_flow,
)

_PROJECT_ROOT = Path(__file__).resolve().parents[4]
_DEMO_FLOWS = _PROJECT_ROOT / "flows"
_FILE = "demo.yaml"

# A valid flow whose start and only node is `bye`; the cases below add nodes after line 9, so
# the first added line is line 10. Nodes nothing refers to are fine, so a broken node does not
# drag other problems in with it.
_HEADER = """\
flow: demo
version: "1"
start: bye
defaults:
  on_max_attempts: bye
nodes:
  bye:
    type: hangup
    prompt: Goodbye.
"""
_FIRST_ADDED_LINE = 10


def _with_nodes(nodes: str) -> str:
    """The header flow plus `nodes` (written unindented) as further entries under `nodes:`."""
    return _HEADER + textwrap.indent(textwrap.dedent(nodes), "  ")


def _with_top(text: str) -> str:
    """The header flow plus `text` (top-level fields) after it."""
    return _HEADER + textwrap.dedent(text)


def _doc(text: str) -> str:
    return textwrap.dedent(text)


def _problems(text: str, file: str = _FILE) -> list[Problem]:
    with pytest.raises(FlowError) as raised:
        parse_flow(text, file)
    return raised.value.problems


def _line(text: str, line: int) -> str:
    return text.splitlines()[line - 1]


# -- the demo flows -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(p for p in _DEMO_FLOWS.glob("*.yaml") if p.stem != "routing"),
    ids=lambda p: p.name,
)
def test_every_demo_flow_loads(path: Path) -> None:
    flow = load_flow_file(path)
    assert flow.id == path.stem
    assert flow.start in flow.nodes
    assert flow.source == str(path)
    assert flow.version


def test_load_flows_loads_the_demo_directory_by_flow_id() -> None:
    flows = load_flows(_DEMO_FLOWS)
    assert sorted(flows) == ["carrier-en", "carrier-intl", "carrier-zh", "survey"]
    assert flows["carrier-zh"].language == "zh-CN"
    assert flows["carrier-en"].language == "en-US"


def test_carrier_zh_is_read_into_the_model() -> None:
    flow = load_flow_file(_DEMO_FLOWS / "carrier-zh.yaml")
    assert flow.version == "2026.11.1"
    assert flow.defaults.max_failures == 3
    assert flow.defaults.on_failure_budget == "agent_after_failures"
    assert len(flow.defaults.no_match) == 2
    assert [(c.intent, c.key, c.goto, c.repeat) for c in flow.commands] == [
        ("agent", "0", "agent_queue", False),
        ("repeat", "*", "", True),
    ]
    menu = flow.nodes["main_menu"]
    assert isinstance(menu, Menu)
    assert [(c.intent, c.key, c.next) for c in menu.choices] == [
        ("bill", "1", "bill_phone"),
        ("data_plan", "2", "data_plan"),
    ]
    phone = flow.nodes["bill_phone"]
    assert isinstance(phone, Collect)
    assert (phone.slot, phone.slot_type, phone.min_length, phone.max_length, phone.pattern) == (
        "phone",
        SlotType.DIGITS,
        11,
        11,
        "1[3-9][0-9]{9}",
    )
    assert phone.keys is True
    agent = flow.nodes["agent"]
    assert isinstance(agent, Transfer)
    assert agent.target == TransferTarget("skill_queue", "10086001")
    busy = flow.nodes["agent_busy"]
    assert isinstance(busy, HangUp)
    assert busy.failed is True


# -- what a valid flow turns into -----------------------------------------------------------


def test_valid_flow_applies_defaults_and_reads_every_prompt_form() -> None:
    text = _with_nodes(
        """\
        hello:
          type: say
          prompt: Hello {call.caller}, {params.name}.
          barge_in: keys
          next: ask
        ask:
          type: menu
          prompt:
            items:
              - tts: Press 1.
                voice: anna
                language: en-GB
                speed: 1.2
              - audio: menu.wav
              - url: https://example.com/a.wav
            barge_in: speech
            min_speech_ms: 300
          choices:
            - intent: one
              key: 1
              next: number
        number:
          type: collect
          slot: answer
          slot_type: text
          prompt: Say something.
          next: check
        check:
          type: branch
          cases:
            - when: {answer: {one_of: [a, b]}, params.vip: "1"}
              next: bye
          default: bye
        """
    )
    flow = parse_flow(text, _FILE)
    assert flow.language == "zh-CN"
    assert flow.voice == ""
    assert flow.commands == ()
    assert flow.defaults.barge_in is BargeIn.ANY
    assert (flow.defaults.max_no_input, flow.defaults.max_no_match) == (3, 3)
    assert (flow.defaults.no_input_timeout_ms, flow.defaults.inter_digit_timeout_ms) == (
        5_000,
        3_000,
    )
    hello = flow.nodes["hello"]
    assert hello == Say(
        "hello",
        PromptSpec((PromptItem(text="Hello {call.caller}, {params.name}."),), BargeIn.KEYS),
        "ask",
    )
    ask = flow.nodes["ask"]
    assert isinstance(ask, Menu)
    assert ask.prompt == PromptSpec(
        (
            PromptItem(text="Press 1.", voice="anna", language="en-GB", speed=1.2),
            PromptItem(media_name="menu.wav"),
            PromptItem(url="https://example.com/a.wav"),
        ),
        BargeIn.SPEECH,
        300,
    )
    assert ask.choices[0].key == "1"  # an unquoted number is read as the key's text
    number = flow.nodes["number"]
    assert isinstance(number, Collect)
    assert number.keys is False  # text slots do not take keys unless asked to
    assert number.speech is True
    check = flow.nodes["check"]
    assert isinstance(check, Branch)
    assert check.cases[0].conditions == (
        Condition("answer", "one_of", ("a", "b")),
        Condition("params.vip", "equals", ("1",)),
    )


def test_declared_and_collected_slots_are_known_placeholders() -> None:
    text = _with_top(
        """\
          said:
            type: say
            prompt: "{phone} {vip} {call.callee} {params.anything}"
            next: bye
          phone_node:
            type: collect
            slot: phone
            slot_type: digits
            prompt: Number?
            next: said
        slots: [vip]
        """
    )
    flow = parse_flow(text, _FILE)
    assert set(flow.nodes) == {"bye", "said", "phone_node"}


# -- broken flows: file, line, where and what was expected -----------------------------------


@dataclass(frozen=True)
class _Broken:
    """A broken flow and the problem it must produce.

    `needle` must appear on line `line` of `text`: it keeps the hand-counted line honest.
    """

    text: str
    line: int
    needle: str
    where: str
    fragments: tuple[str, ...]


_BROKEN = {
    "yaml-bad-indentation": _Broken(
        _doc(
            """\
            flow: demo
            version: "1"
            start: bye
            defaults:
              on_max_attempts: bye
            nodes:
              bye:
                type: hangup
               prompt: Goodbye.
            """
        ),
        9,
        " prompt: Goodbye.",
        "yaml",
        ("expected <block end>", "line 9"),
    ),
    "yaml-unclosed-list": _Broken(
        _doc(
            """\
            flow: demo
            version: "1"
            start: bye
            defaults:
              on_max_attempts: [bye
            nodes: {}
            """
        ),
        6,
        "nodes:",
        "yaml",
        ("expected ',' or ']'",),
    ),
    "not-a-mapping": _Broken(
        "- flow: demo\n", 1, "- flow", "file", ("got a list, expected a mapping",)
    ),
    "missing-flow": _Broken(
        _doc(
            """\
            # The flow's id is missing.
            version: "1"
            start: bye
            defaults:
              on_max_attempts: bye
            nodes:
              bye:
                type: hangup
            """
        ),
        2,  # problems about the whole document point at its first field
        'version: "1"',
        "flow",
        ("'flow' is missing", "expected text"),
    ),
    "missing-version": _Broken(
        _doc(
            """\
            flow: demo
            start: bye
            defaults:
              on_max_attempts: bye
            nodes:
              bye:
                type: hangup
            """
        ),
        1,
        "flow: demo",
        "flow",
        ("'version' is missing", "expected text"),
    ),
    "missing-start": _Broken(
        _doc(
            """\
            flow: demo
            version: "1"
            defaults:
              on_max_attempts: bye
            nodes:
              bye:
                type: hangup
            """
        ),
        1,
        "flow: demo",
        "flow",
        ("'start' is missing", "expected text"),
    ),
    "missing-defaults": _Broken(
        _doc(
            """\
            flow: demo
            version: "1"
            start: bye
            nodes:
              bye:
                type: hangup
            """
        ),
        1,
        "flow: demo",
        "flow",
        ("'defaults' is missing", "expected a mapping"),
    ),
    "missing-nodes": _Broken(
        _doc(
            """\
            flow: demo
            version: "1"
            start: bye
            defaults:
              on_max_attempts: bye
            """
        ),
        1,
        "flow: demo",
        "flow",
        ("'nodes' is missing", "expected a mapping"),
    ),
    "missing-on-max-attempts": _Broken(
        _doc(
            """\
            flow: demo
            version: "1"
            start: bye
            defaults:
              max_no_input: 2
            nodes:
              bye:
                type: hangup
            """
        ),
        5,
        "max_no_input: 2",
        "defaults",
        ("'on_max_attempts' is missing", "expected text"),
    ),
    "invalid-flow-id": _Broken(
        _doc(
            """\
            flow: Demo Line
            version: "1"
            start: bye
            defaults:
              on_max_attempts: bye
            nodes:
              bye:
                type: hangup
            """
        ),
        1,
        "flow: Demo Line",
        "flow.flow",
        ("'Demo Line' is not a valid flow id", "expected lowercase letters, digits, '-', '_'"),
    ),
    "unknown-top-level-field": _Broken(
        _with_top("descripton: A typo.\n"),
        10,
        "descripton",
        "flow",
        ("unknown field 'descripton'", "expected one of: flow, version, description,"),
    ),
    "defaults-wrong-type": _Broken(
        _doc(
            """\
            flow: demo
            version: "1"
            start: bye
            defaults:
              on_max_attempts: bye
              max_no_input: "three"
            nodes:
              bye:
                type: hangup
            """
        ),
        6,
        'max_no_input: "three"',
        "defaults.max_no_input",
        ("got str 'three'", "expected a whole number"),
    ),
    "unknown-node-type": _Broken(
        _with_nodes(
            """\
            x:
              type: play
              prompt: Hi.
            """
        ),
        11,
        "type: play",
        "node 'x'.type",
        (
            "unknown node type 'play'",
            "expected one of: say, menu, collect, branch, transfer, hangup, record, wait, ai_gather",
        ),
    ),
    "unknown-node-field": _Broken(
        _with_nodes(
            """\
            x:
              type: say
              prompt: Hi.
              nxt: bye
              next: bye
            """
        ),
        13,
        "nxt: bye",
        "node 'x'",
        (
            "unknown field 'nxt'",
            "expected one of: type, prompt, next, wait_for_playback, barge_in",
        ),
    ),
    "missing-node-type": _Broken(
        _with_nodes(
            """\
            x:
              prompt: Hi.
              next: bye
            """
        ),
        11,
        "prompt: Hi.",
        "node 'x'",
        ("'type' is missing", "expected text"),
    ),
    "missing-prompt": _Broken(
        _with_nodes(
            """\
            x:
              type: say
              next: bye
            """
        ),
        11,
        "type: say",
        "node 'x'",
        ("'prompt' is missing", "expected text, or a list of prompts"),
    ),
    "next-to-unknown-node": _Broken(
        _with_nodes(
            """\
            x:
              type: say
              prompt: Hi.
              next: byebye
            """
        ),
        13,
        "next: byebye",
        "node 'x'.next",
        ("unknown node 'byebye'", "expected one of: bye, x"),
    ),
    "start-at-unknown-node": _Broken(
        _HEADER.replace("start: bye", "start: welcome"),
        3,
        "start: welcome",
        "flow.start",
        ("unknown node 'welcome'", "expected one of: bye"),
    ),
    "unknown-placeholder": _Broken(
        _with_nodes(
            """\
            x:
              type: say
              prompt: Hello {nope}.
              next: bye
            """
        ),
        12,
        "{nope}",
        "node 'x'.prompt",
        (
            "unknown placeholder '{nope}'",
            "expected one of: call.callee, call.caller, call.date, call.time, params.NAME, "
            "queue.position/wait_minutes/agents_online/agents_idle, assistant.reason/duration_ms/transcript, transfer.failure)",
        ),
    ),
    "unknown-placeholder-in-a-list-item": _Broken(
        _with_nodes(
            """\
            x:
              type: say
              prompt:
                - Hi.
                - tts: Hello {nope}.
              next: bye
            """
        ),
        14,
        "{nope}",
        "node 'x'.prompt[1]",
        ("unknown placeholder '{nope}'",),
    ),
    "prompt-with-two-sources": _Broken(
        _with_nodes(
            """\
            x:
              type: say
              prompt:
                tts: Hi.
                audio: hi.wav
              next: bye
            """
        ),
        13,
        "tts: Hi.",
        "node 'x'.prompt",
        ("has 2 of tts/audio/url", "expected exactly one"),
    ),
    "bad-barge-in": _Broken(
        _with_nodes(
            """\
            x:
              type: say
              prompt: Hi.
              barge_in: never
              next: bye
            """
        ),
        13,
        "barge_in: never",
        "node 'x'.barge_in",
        ("got 'never'", "expected one of: none, speech, keys, any"),
    ),
    "bad-regex": _Broken(
        _with_nodes(
            """\
            x:
              type: collect
              slot: phone
              slot_type: digits
              pattern: "[0-9"
              prompt: Number?
              next: bye
            """
        ),
        14,
        "pattern",
        "node 'x'.pattern",
        ("invalid regular expression", "unterminated character set"),
    ),
    "min-length-above-max-length": _Broken(
        _with_nodes(
            """\
            x:
              type: collect
              slot: phone
              slot_type: digits
              min_length: 5
              max_length: 3
              prompt: Number?
              next: bye
            """
        ),
        11,  # the node's first field
        "type: collect",
        "node 'x'",
        ("min_length 5 > max_length 3",),
    ),
    "missing-slot-type": _Broken(
        _with_nodes(
            """\
            x:
              type: collect
              slot: phone
              prompt: Number?
              next: bye
            """
        ),
        11,
        "type: collect",
        "node 'x'",
        (
            "'slot_type' is missing",
            "expected one of: digits, number, integer, amount, mobile_cn, e164, date, time, yes_no, choice, regex, text",
        ),
    ),
    "unknown-slot-type": _Broken(
        _with_nodes(
            """\
            x:
              type: collect
              slot: when
              slot_type: datetime
              prompt: When?
              next: bye
            """
        ),
        13,
        "slot_type: datetime",
        "node 'x'.slot_type",
        (
            "got 'datetime'",
            "expected one of: digits, number, integer, amount, mobile_cn, e164, date, time, yes_no, choice, regex, text",
        ),
    ),
    "invalid-slot-name": _Broken(
        _with_nodes(
            """\
            x:
              type: collect
              slot: Phone
              slot_type: digits
              prompt: Number?
              next: bye
            """
        ),
        12,
        "slot: Phone",
        "node 'x'.slot",
        ("'Phone' is not a valid slot name", "expected lowercase letters, digits, '_'"),
    ),
    "bad-terminator": _Broken(
        _with_nodes(
            """\
            x:
              type: collect
              slot: phone
              slot_type: digits
              terminator: "0"
              prompt: Number?
              next: bye
            """
        ),
        14,
        "terminator",
        "node 'x'.terminator",
        ("got '0'", "expected '#', '*' or ''"),
    ),
    "duplicate-menu-keys": _Broken(
        _with_nodes(
            """\
            x:
              type: menu
              prompt: Press 1.
              choices:
                - intent: a
                  key: "1"
                  next: bye
                - intent: b
                  key: "1"
                  next: bye
            """
        ),
        14,  # the first entry of the list
        "- intent: a",
        "node 'x'.choices",
        ("keys ['1', '1'] repeat", "expected each key once"),
    ),
    "choice-without-key-or-keywords": _Broken(
        _with_nodes(
            """\
            x:
              type: menu
              prompt: Say something.
              choices:
                - intent: a
                  next: bye
            """
        ),
        14,
        "- intent: a",
        "node 'x'.choices[0]",
        ("neither 'key' nor 'keywords'", "expected at least one"),
    ),
    "invalid-key": _Broken(
        _with_nodes(
            """\
            x:
              type: menu
              prompt: Press 12.
              choices:
                - intent: a
                  key: "12"
                  next: bye
            """
        ),
        15,
        'key: "12"',
        "node 'x'.choices[0].key",
        ("got '12'", "expected one key of 0123456789*#"),
    ),
    "menu-without-choices": _Broken(
        _with_nodes(
            """\
            x:
              type: menu
              prompt: Press 1.
            """
        ),
        11,
        "type: menu",
        "node 'x'",
        ("'choices' is missing", "expected a list"),
    ),
    "wrong-type-in-node": _Broken(
        _with_nodes(
            """\
            x:
              type: menu
              prompt: Press 1.
              max_no_input: "three"
              choices:
                - intent: a
                  key: "1"
                  next: bye
            """
        ),
        13,
        "max_no_input",
        "node 'x'.max_no_input",
        ("got str 'three'", "expected a whole number"),
    ),
    "text-for-true-or-false": _Broken(
        _with_nodes(
            """\
            x:
              type: menu
              prompt: Press 1.
              speech: "no"
              choices:
                - intent: a
                  key: "1"
                  next: bye
            """
        ),
        13,
        "speech",
        "node 'x'.speech",
        ("got str 'no'", "expected true or false"),
    ),
    "transfer-without-target-kind": _Broken(
        _with_nodes(
            """\
            x:
              type: transfer
              target: {}
              on_failure: bye
            """
        ),
        12,
        "target: {}",
        "node 'x'.target",
        (
            "has 0 targets",
            "expected exactly one of: phone_number, skill_queue, skill_queue_name, agent_id, "
            "ivr_flow, sip_uri",
        ),
    ),
    "transfer-with-two-targets": _Broken(
        _with_nodes(
            """\
            x:
              type: transfer
              target:
                phone_number: "+15550100"
                agent_id: a7
              on_failure: bye
            """
        ),
        13,  # the target mapping starts at its first entry
        "phone_number",
        "node 'x'.target",
        ("has 2 targets", "expected exactly one of: phone_number,"),
    ),
    "bad-transfer-mode": _Broken(
        _with_nodes(
            """\
            x:
              type: transfer
              target: {phone_number: "+15550100"}
              mode: warm
              on_failure: bye
            """
        ),
        13,
        "mode: warm",
        "node 'x'.mode",
        ("got 'warm'", "expected blind or parallel"),
    ),
    "bad-hangup-reason": _Broken(
        _with_nodes(
            """\
            x:
              type: hangup
              reason: done
            """
        ),
        12,
        "reason: done",
        "node 'x'.reason",
        ("got 'done'", "expected completed or failed"),
    ),
    "wait-too-long": _Broken(
        _with_nodes(
            """\
            x:
              type: wait
              duration_ms: 70000
              next: bye
            """
        ),
        12,
        "duration_ms",
        "node 'x'.duration_ms",
        ("got 70000", "expected 1-60000"),
    ),
    "ai-gather-schema-not-an-object": _Broken(
        _with_nodes(
            """\
            x:
              type: ai_gather
              greeting: Hello.
              schema:
                type: string
              next: bye
              on_failure: bye
            """
        ),
        14,
        "type: string",
        "node 'x'.schema",
        ("expected a JSON schema with type: object and properties",),
    ),
    "unknown-condition": _Broken(
        _with_nodes(
            """\
            x:
              type: branch
              cases:
                - when:
                    params.vip: {greater_than: 1}
                  next: bye
              default: bye
            """
        ),
        14,
        "greater_than",
        "node 'x'.cases[0].when.params.vip",
        (
            "unknown field 'greater_than'",
            "expected one of: equals, not_equals, one_of, present, absent",
        ),
    ),
    "invalid-node-id": _Broken(
        _with_nodes(
            """\
            Main-Menu:
              type: say
              prompt: Hi.
              next: bye
            """
        ),
        10,
        "Main-Menu:",
        "node 'Main-Menu'",
        ("invalid node id", "expected lowercase letters, digits and '_', starting with a letter"),
    ),
    "command-with-goto-and-repeat": _Broken(
        _with_top(
            """\
            commands:
              - intent: again
                keywords: [again]
                goto: bye
                repeat: true
            """
        ),
        11,
        "- intent: again",
        "commands[0]",
        ("expected exactly one of 'goto: NODE' or 'repeat: true'",),
    ),
    "command-without-keywords": _Broken(
        _with_top(
            """\
            commands:
              - intent: agent
                key: "0"
                goto: bye
            """
        ),
        11,
        "- intent: agent",
        "commands[0]",
        ("'keywords' is missing", "expected a list"),
    ),
    "command-with-invalid-key": _Broken(
        _with_top(
            """\
            commands:
              - intent: agent
                keywords: [agent]
                key: "00"
                goto: bye
            """
        ),
        13,
        'key: "00"',
        "commands[0].key",
        ("got '00'", "expected one key of 0123456789*#"),
    ),
    "command-goto-unknown-node": _Broken(
        _with_top(
            """\
            commands:
              - intent: agent
                keywords: [agent]
                goto: agent
            """
        ),
        13,
        "goto: agent",
        "commands[0].goto",
        ("unknown node 'agent'", "expected one of: bye"),
    ),
}


@pytest.mark.parametrize("case", list(_BROKEN.values()), ids=list(_BROKEN))
def test_broken_flow_is_reported_at_its_file_line_and_field(case: _Broken) -> None:
    assert case.needle in _line(case.text, case.line), "the test case's line number is off"
    problems = _problems(case.text)
    assert {p.file for p in problems} == {_FILE}
    found = [
        p
        for p in problems
        if p.where == case.where
        and p.line == case.line
        and all(fragment in p.message for fragment in case.fragments)
    ]
    assert len(found) == 1, problems


def test_the_error_text_lists_every_problem_as_file_line_where_message() -> None:
    text = _with_nodes(
        """\
        x:
          type: say
          prompt: Hi.
          next: nowhere
        """
    )
    with pytest.raises(FlowError) as raised:
        parse_flow(text, "flows/demo.yaml")
    assert str(raised.value) == (
        "invalid flow:\n"
        "  flows/demo.yaml:13: node 'x'.next: unknown node 'nowhere' (expected one of: bye, x)"
    )
    assert str(raised.value.problems[0]) == (
        "flows/demo.yaml:13: node 'x'.next: unknown node 'nowhere' (expected one of: bye, x)"
    )


def test_several_problems_are_reported_at_once() -> None:
    text = _with_nodes(
        """\
        greet:
          type: say
          prompt: Hello {nope}.
          colour: blue
          next: menu
        menu:
          type: menu
          prompt: Press 1.
          max_no_match: 0
          choices:
            - intent: a
              key: "12"
              next: nowhere
        """
    )
    messages = {(p.line, p.where): p.message for p in _problems(text)}
    assert set(messages) == {
        (13, "node 'greet'"),
        (12, "node 'greet'.prompt"),
        (18, "node 'menu'.max_no_match"),
        (21, "node 'menu'.choices[0].key"),
        (22, "node 'menu'.choices[0].next"),
    }
    assert "unknown field 'colour'" in messages[13, "node 'greet'"]
    assert "unknown placeholder '{nope}'" in messages[12, "node 'greet'.prompt"]
    assert messages[18, "node 'menu'.max_no_match"] == "got 0, expected a number above 0"
    assert "expected one key of" in messages[21, "node 'menu'.choices[0].key"]
    assert "unknown node 'nowhere'" in messages[22, "node 'menu'.choices[0].next"]


def test_problems_in_different_parts_of_the_file_are_all_reported() -> None:
    text = _doc(
        """\
        flow: demo
        version: "1"
        start: nowhere
        defaults:
          on_max_attempts: bye
          barge_in: sometimes
        commands:
          - intent: agent
            keywords: [agent]
            goto: bye
            repeat: true
        nodes:
          bye:
            type: hangup
            reason: maybe
        """
    )
    assert {(p.line, p.where) for p in _problems(text)} == {
        (3, "flow.start"),
        (6, "defaults.barge_in"),
        (8, "commands[0]"),
        (15, "node 'bye'.reason"),
    }


def test_a_say_branch_cycle_is_rejected() -> None:
    text = _with_nodes(
        """\
        a:
          type: say
          prompt: A.
          next: b
        b:
          type: branch
          cases:
            - when: {params.vip: "1"}
              next: bye
          default: a
        """
    )
    (problem,) = _problems(text)
    assert problem.where == "node 'a'"
    assert problem.message == (
        "say/branch nodes loop back to 'a' without waiting for the caller (a → b → a); "
        "expected a node that listens, transfers or ends on the way"
    )


def test_a_say_that_waits_for_playback_breaks_a_cycle() -> None:
    text = _with_nodes(
        """\
        a:
          type: say
          prompt: A.
          wait_for_playback: true
          next: b
        b:
          type: branch
          cases: []
          default: a
        """
    )
    assert set(parse_flow(text, _FILE).nodes) == {"bye", "a", "b"}


def test_a_say_branch_cycle_points_at_the_looping_node() -> None:
    text = _with_nodes(
        """\
        a:
          type: say
          prompt: A.
          next: a
        """
    )
    (problem,) = _problems(text)
    assert problem.where == "node 'a'"
    assert problem.line in (10, 11)


def test_a_say_branch_cycle_through_a_case_is_rejected() -> None:
    text = _with_nodes(
        """\
        a:
          type: say
          prompt: A.
          next: b
        b:
          type: branch
          cases:
            - when: {params.vip: {present: true}}
              next: a
          default: bye
        """
    )
    problems = _problems(text)
    assert any("loop back to" in p.message for p in problems), problems


def test_a_node_id_defined_twice_is_reported() -> None:
    text = _with_nodes(
        """\
        x:
          type: say
          prompt: First.
          next: bye
        x:
          type: say
          prompt: Second.
          next: bye
        """
    )
    problems = _problems(text)
    assert any(p.line == 14 and "x" in p.where for p in problems), problems


def test_a_boolean_where_a_number_is_expected_is_named_in_the_message() -> None:
    text = _HEADER.replace(
        "  on_max_attempts: bye\n", "  on_max_attempts: bye\n  max_no_input: yes\n"
    )
    (problem,) = _problems(text)
    assert (problem.line, problem.where) == (6, "defaults.max_no_input")
    assert "True" in problem.message


def test_an_unknown_placeholder_in_an_ai_gather_greeting_is_reported() -> None:
    text = _with_nodes(
        """\
        x:
          type: ai_gather
          greeting: Hello {nope}.
          schema: {type: object, properties: {city: {type: string}}}
          next: bye
          on_failure: bye
        """
    )
    problems = _problems(text)
    assert [(p.line, p.where) for p in problems] == [(12, "node 'x'.greeting")]


# -- files and directories ------------------------------------------------------------------


def test_load_flow_file_names_the_file_and_its_lines(tmp_path: Path) -> None:
    path = tmp_path / "demo.yaml"
    path.write_text(
        _with_nodes(
            """\
            x:
              type: say
              prompt: 你好，{nope}。
              next: bye
            """
        ),
        encoding="utf-8",
    )
    with pytest.raises(FlowError) as raised:
        load_flow_file(path)
    assert raised.value.problems == [
        Problem(
            str(path),
            12,
            "node 'x'.prompt",
            "unknown placeholder '{nope}' (expected one of: call.callee, call.caller, call.date, call.time, params.NAME, queue.position/wait_minutes/agents_online/agents_idle, assistant.reason/duration_ms/transcript, transfer.failure)",
        )
    ]


def test_load_flow_file_refuses_an_oversized_file(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"#" * (MAX_FLOW_FILE_BYTES + 1))
    with pytest.raises(FlowError) as raised:
        load_flow_file(path)
    assert raised.value.problems == [
        Problem(
            str(path),
            1,
            "file",
            f"{MAX_FLOW_FILE_BYTES + 1} bytes, expected at most {MAX_FLOW_FILE_BYTES}",
        )
    ]


def test_load_flow_file_accepts_a_file_of_exactly_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    padding = MAX_FLOW_FILE_BYTES - len(_HEADER.encode()) - 1
    path.write_bytes(_HEADER.encode() + b"#" + b"x" * (padding - 1) + b"\n")
    assert path.stat().st_size == MAX_FLOW_FILE_BYTES
    assert load_flow_file(path).id == "demo"


def _flow_text(flow_id: str) -> str:
    return _HEADER.replace("flow: demo", f"flow: {flow_id}")


def test_load_flows_reports_a_flow_id_used_twice(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_flow_text("line"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text(_flow_text("line"), encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_flows(tmp_path)
    assert raised.value.problems == [
        Problem(
            str(tmp_path / "b.yaml"),
            1,
            "flow",
            f"flow id 'line' is also used by {tmp_path / 'a.yaml'}",
        )
    ]


def test_a_duplicate_flow_id_points_at_the_flow_line(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(_flow_text("line"), encoding="utf-8")
    (tmp_path / "b.yaml").write_text("# Copy of a.\n" + _flow_text("line"), encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_flows(tmp_path)
    (problem,) = raised.value.problems
    assert problem.line == 2


def test_load_flows_reports_the_problems_of_every_file_together(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        _flow_text("one").replace("start: bye", "start: nowhere"), encoding="utf-8"
    )
    (tmp_path / "b.yml").write_text(
        _flow_text("two").replace("version", "versio"), encoding="utf-8"
    )
    (tmp_path / "c.yaml").write_text(_flow_text("three"), encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_flows(tmp_path)
    assert [(Path(p.file).name, p.line, p.where) for p in raised.value.problems] == [
        ("a.yaml", 3, "flow.start"),
        ("b.yml", 2, "flow"),  # unknown field 'versio'
        ("b.yml", 1, "flow"),  # 'version' is missing
    ]


def test_load_flows_reads_yml_and_skips_the_routing_file(tmp_path: Path) -> None:
    (tmp_path / "one.yaml").write_text(_flow_text("one"), encoding="utf-8")
    (tmp_path / "two.yml").write_text(_flow_text("two"), encoding="utf-8")
    (tmp_path / "routing.yaml").write_text("default: one\n", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not a flow", encoding="utf-8")
    flows = load_flows(tmp_path)
    assert sorted(flows) == ["one", "two"]
    assert flows["two"].source == str(tmp_path / "two.yml")
