"""The static checks of `dialogue validate`, on small inline flows."""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass

from server.engine.flow import Flow, HangUp, PromptItem, PromptSpec
from server.engine.flowfile import parse_flow, parse_subflows
from server.tools.common import all_edges, node_edges
from server.tools.lint import ERROR, WARNING, Finding, lint_flow

_HEADER = """\
flow: t
version: "1"
language: zh-CN
start: ask
defaults:
  on_max_attempts: bye
"""


def _lint(body: str, extra_top: str = "") -> list[Finding]:
    """Lints header + body; `extra_top` is appended to the text the lint reads, not the loader."""
    text = _HEADER + textwrap.dedent(body)
    return lint_flow(parse_flow(text, "t.yaml"), text + extra_top)


def _short(findings: list[Finding]) -> list[tuple[int, str, str]]:
    return [(f.line, f.severity, f.where) for f in findings]


_MENU = """\
nodes:
  ask:
    type: menu
    prompt: 请选择。
    choices:
      - intent: one
        key: "1"
        next: {one}
  bye:
    type: hangup
    prompt: 再见。
"""


def test_a_node_nothing_leads_to_is_unreachable() -> None:
    findings = _lint(_MENU.format(one="bye") + "  lost:\n    type: hangup\n    prompt: 迷路了。\n")
    assert _short(findings) == [(18, WARNING, "node 'lost'")]
    assert findings[0].message == "unreachable: no path from start 'ask' leads here"


def test_a_global_command_target_is_reachable() -> None:
    commands = "commands:\n  - intent: agent\n    keywords: [人工]\n    goto: agent\n"
    agent = '  agent:\n    type: transfer\n    target: {skill_queue: "1"}\n    on_failure: bye\n'
    assert _lint(commands + _MENU.format(one="bye") + agent) == []


def test_a_loop_without_an_end_is_a_dead_end_reported_once_where_it_is_entered() -> None:
    spin = textwrap.indent(
        textwrap.dedent("""\
            spin:
              type: wait
              duration_ms: 500
              next: spin_more
            spin_more:
              type: say
              prompt: 请稍候。
              wait_for_playback: true
              next: spin
        """),
        "  ",
    )
    findings = _lint(_MENU.format(one="spin") + spin)
    assert _short(findings) == [(18, ERROR, "node 'spin'")]
    assert "(from here it can only reach: spin_more)" in findings[0].message


def test_a_menu_that_loops_is_no_dead_end_while_escalation_leads_out() -> None:
    assert _lint(_MENU.format(one="ask")) == []


def test_a_dead_end_nothing_reaches_is_only_unreachable() -> None:
    body = (
        _MENU.format(one="bye")
        + "  limbo:\n    type: wait\n    duration_ms: 500\n    next: limbo\n"
    )
    assert [f.severity for f in _lint(body)] == [WARNING]


def test_a_slot_read_where_no_path_has_set_it_is_reported() -> None:
    body = """\
        nodes:
          ask:
            type: menu
            prompt: 您好{name}，请选择。
            choices:
              - intent: check
                key: "1"
                next: check
              - intent: name
                key: "2"
                next: get_name
          get_name:
            type: collect
            slot: name
            slot_type: text
            prompt: 请说您的名字。
            next: bye
          check:
            type: branch
            cases:
              - when: {name: 张三}
                next: bye
              - when: {name: {present: true}}
                next: bye
            default: bye
          bye:
            type: hangup
            prompt: 再见{name}。
    """
    findings = _lint(body)
    assert _short(findings) == [
        (10, WARNING, "node 'ask'.prompt"),
        (27, WARNING, "node 'check'.cases[0]"),
    ]
    assert findings[0].message == (
        "reads slot 'name' at node 'ask', but no path to it sets 'name' first "
        "(it is always empty here)"
    )


def test_a_collects_confirmation_reads_its_own_slot_filled_but_its_other_prompts_do_not() -> None:
    body = """\
        nodes:
          ask:
            type: collect
            slot: at
            slot_type: time
            prompt: "几点{at}？"
            confirm: "是{at}吗？确认请按1，重新选择请按2。"
            invalid: ["{at}不是时间。"]
            no_input: ["{at}您还在吗？"]
            next: bye
          bye:
            type: hangup
            prompt: 好的，{at}。
    """
    findings = _lint(body)
    assert _short(findings) == [
        (12, WARNING, "node 'ask'.prompt"),
        (14, WARNING, "node 'ask'.invalid[0]"),
        (15, WARNING, "node 'ask'.no_input[0]"),
    ]


def test_declared_slots_and_call_values_are_not_checked() -> None:
    body = """\
        slots: [vip]
        nodes:
          ask:
            type: menu
            prompt: "{vip}{params.level}{call.caller}"
            choices:
              - intent: one
                key: "1"
                next: bye
          bye:
            type: hangup
            prompt: 再见。
    """
    assert _lint(body) == []


def test_a_default_reprompt_reading_an_unset_slot_points_at_defaults() -> None:
    text = (
        _HEADER
        + '  no_match: ["没听懂{phone}。"]\n'
        + textwrap.dedent("""\
        nodes:
          ask:
            type: collect
            slot: phone
            slot_type: digits
            prompt: 请输入号码。
            next: bye
          bye:
            type: hangup
            prompt: 再见。
    """)
    )
    findings = lint_flow(parse_flow(text, "t.yaml"), text)
    assert _short(findings) == [(7, WARNING, "defaults.no_match[0]")]


def test_with_declared_languages_every_prompt_needs_each_language() -> None:
    # Issue 17 bug 5: `languages:` was refused by the loader, so this check could never run.
    body = """\
        commands:
          - intent: agent
            keywords: {zh-CN: [人工], en-US: [agent]}
            goto: bye
          - intent: help
            keywords: {zh-CN: [帮助]}
            goto: bye
        nodes:
          ask:
            type: menu
            prompt:
              - 请选择。
              - {tts: "Please choose.", language: en-US}
            choices:
              - intent: one
                keywords: {en-US: [one]}
                next: bye
              - intent: two
                keywords: [二, two]
                next: bye
          bye:
            type: hangup
            prompt: {zh-CN: 再见。, en-US: Goodbye.}
          lost:
            type: hangup
            prompt: 再见。
    """
    text = _HEADER.replace("language: zh-CN\n", "languages: [zh-CN, en-US]\n") + textwrap.dedent(
        body
    )
    findings = [f for f in lint_flow(parse_flow(text, "t.yaml"), text) if f.severity == ERROR]
    assert _short(findings) == [
        (11, ERROR, "commands[1].keywords"),
        (21, ERROR, "node 'ask'.choices[0].keywords"),
        (32, ERROR, "node 'lost'.prompt"),
    ]
    assert findings[0].message == (
        "no keywords for language en-US (the flow declares languages: zh-CN, en-US; "
        "these keywords have zh-CN)"
    )
    assert findings[2].message == (
        "no prompt for language en-US (the flow declares languages: zh-CN, en-US; "
        "this prompt has zh-CN); calls in it hear the zh-CN items"
    )
    # A subflow may key items by a language the flow does not declare: nobody hears them.
    library = parse_subflows(
        {
            "hi.yaml": "subflow: hi\nstart: hi\nnodes:\n"
            "  hi: {type: say, prompt: {zh-CN: 您好, en-US: Hi, fr-FR: Salut}, next: done}\n"
            "  done: {type: return}\n"
        }
    )
    uses = (
        _HEADER.replace("language: zh-CN\n", "languages: [zh-CN, en-US]\n").replace(
            "start: ask", "start: hi"
        )
        + "nodes:\n  hi: {type: subflow, flow: hi, next: bye}\n  bye: {type: hangup, prompt: {zh-CN: 再见, en-US: Bye}}\n"
    )
    found = lint_flow(parse_flow(uses, "t.yaml", library), uses)
    assert [(f.line, f.severity, f.where, f.message) for f in found] == [
        (
            8,
            WARNING,
            "node 'hi.hi'.prompt",
            "items in fr-FR, which the flow does not declare (languages: zh-CN, en-US): no "
            "call hears them",
        )
    ]
    # A voice or an AI gather greeting given per language needs every language too.
    voices = _HEADER.replace(
        "language: zh-CN\n", "languages: [zh-CN, en-US]\nvoice: {zh-CN: xiaoyun}\n"
    ) + textwrap.dedent("""\
        nodes:
          ask:
            type: ai_gather
            greeting: {en-US: Hello.}
            schema: {type: object, properties: {topic: {type: string}}}
            next: bye
            on_failure: bye
          bye: {type: hangup, prompt: {zh-CN: 再见。, en-US: Goodbye.}}
    """)
    found = [f for f in lint_flow(parse_flow(voices, "t.yaml"), voices) if f.severity == ERROR]
    assert [(f.line, f.where, f.message) for f in found] == [
        (
            4,
            "flow.voice",
            "no voice for language en-US (the flow declares languages: zh-CN, en-US; it has "
            "zh-CN); calls in it get the zh-CN one",
        ),
        (
            11,
            "node 'ask'.greeting",
            "no greeting for language zh-CN (the flow declares languages: zh-CN, en-US; it has "
            "en-US); calls in it get the zh-CN one",
        ),
    ]
    # A flow of one language has nothing to miss.
    one = _HEADER + textwrap.dedent(body).replace("en-US: [agent]", "").replace(
        "{en-US: [one]}", "[one]"
    )
    one = one.replace("en-US: Goodbye.", "").replace(
        '- {tts: "Please choose.", language: en-US}', "- Please choose."
    )
    assert [f for f in lint_flow(parse_flow(one, "t.yaml"), one) if f.severity == ERROR] == []


def test_settings_without_effect_are_warned_about() -> None:
    text = (
        _HEADER
        + "  max_failures: 2\n"
        + 'commands:\n  - intent: agent\n    keywords: []\n    key: "1"\n    goto: bye\n'
        + _MENU.format(one="bye")
    )
    findings = lint_flow(parse_flow(text, "t.yaml"), text)
    assert _short(findings) == [
        (7, WARNING, "defaults.max_failures"),
        (18, WARNING, "node 'ask'.choices[0]"),
    ]
    assert "pressing it never picks 'one'" in findings[1].message
    budget_only = _HEADER + "  on_failure_budget: bye\n" + _MENU.format(one="bye")
    assert [f.where for f in lint_flow(parse_flow(budget_only, "t.yaml"), budget_only)] == [
        "defaults.on_failure_budget"
    ]


@dataclass(frozen=True, slots=True)
class _Escalate:
    """Stands in for a node kind the engine may gain after these tools were written."""

    id: str
    prompt: PromptSpec
    next: str
    on_failure: str


def _with_new_kind() -> tuple[Flow, str]:
    text = _HEADER + _MENU.format(one="bye")
    flow = parse_flow(text, "t.yaml")
    new = _Escalate("later", PromptSpec((PromptItem(text="稍后{when}"),)), "ask", "bye")
    nodes = {**flow.nodes, "later": new}
    return dataclasses.replace(flow, nodes=nodes, start="later"), text  # type: ignore[arg-type]


def test_a_node_kind_the_tools_do_not_know_is_read_generically() -> None:
    flow, text = _with_new_kind()
    later = flow.nodes["later"]
    assert [(e.target, e.label) for e in node_edges(flow, later)] == [
        ("ask", "next"),
        ("bye", "on_failure"),
    ]
    assert any(edge.source == "later" for edge in all_edges(flow))
    # No crash, and no dead-end error: a kind we cannot read is assumed able to end the call.
    assert [f.severity for f in lint_flow(flow, text)] == []


def test_hangup_is_the_only_kind_without_edges() -> None:
    flow = parse_flow(_HEADER + _MENU.format(one="bye"), "t.yaml")
    assert isinstance(flow.nodes["bye"], HangUp)
    assert node_edges(flow, flow.nodes["bye"]) == []
