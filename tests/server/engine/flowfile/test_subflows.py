"""Subflows: reusable pieces inlined at load time — walking through them and back, several uses
in one flow, nesting, loading from a flows directory, and the errors an author can make."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.engine.flow import Branch, Collect
from server.engine.flowfile import (
    FlowError,
    Problem,
    Subflow,
    load_flow_file,
    load_flows,
    parse_flow,
    parse_subflows,
)
from server.engine.state import encode
from tests.server.engine.test_interpreter import (
    HEADER,
    keys,
    last,
    no_match,
    speech,
    spoken,
    started,
    walk,
)

COLLECT_MOBILE = """\
subflow: collect_mobile
description: Asks for a Chinese mobile number, reads it back, and gives up after two misses.
start: ask
nodes:
  ask:
    type: collect
    slot: mobile
    slot_type: mobile_cn
    prompt: 请说出您的手机号码
    confirm: 您说的是{mobile}，对吗？
    max_no_match: 2
    on_max: failed
    next: done
  done: {type: return}
  failed: {type: return, outcome: failed}
"""

PARENT = """\
start: welcome
defaults: {on_max_attempts: bye}
nodes:
  welcome: {type: say, prompt: 欢迎, next: get_phone}
  get_phone:
    type: subflow
    flow: collect_mobile
    next: thanks
    outcomes: {failed: agent}
  thanks: {type: hangup, prompt: "谢谢，我们会联系{mobile}"}
  agent: {type: hangup, prompt: 转人工}
  bye: {type: hangup, prompt: 再见}
"""


def subflows(*texts: str) -> dict[str, Subflow]:
    return parse_subflows({f"subflows/s{n}.yaml": text for n, text in enumerate(texts)})


def flow_with(body: str, *library: str) -> object:
    return parse_flow(HEADER + textwrap.dedent(body), "inline.yaml", subflows(*library))


def test_a_subflow_is_inlined_with_prefixed_ids_and_returns_become_jumps() -> None:
    flow = parse_flow(HEADER + PARENT, "inline.yaml", subflows(COLLECT_MOBILE))
    assert sorted(flow.nodes) == [
        "agent",
        "bye",
        "get_phone",
        "get_phone.ask",
        "get_phone.done",
        "get_phone.failed",
        "thanks",
        "welcome",
    ]
    assert flow.nodes["get_phone"] == Branch("get_phone", (), "get_phone.ask")
    assert flow.nodes["get_phone.done"] == Branch("get_phone.done", (), "thanks")
    assert flow.nodes["get_phone.failed"] == Branch("get_phone.failed", (), "agent")
    ask = flow.nodes["get_phone.ask"]
    assert isinstance(ask, Collect)
    assert (ask.next, ask.escalation.on_max) == ("get_phone.done", "get_phone.failed")


def test_a_call_walks_into_the_subflow_and_back_out() -> None:
    flow = parse_flow(HEADER + PARENT, "inline.yaml", subflows(COLLECT_MOBILE))
    first, asked, confirmed = walk(flow, started(), speech("13800138000"), keys("1"))
    assert first.state.node == "get_phone.ask"
    assert spoken(first) == ["欢迎", "请说出您的手机号码"]
    assert first.response.call_data.continuation_token == "get_phone-ask-1"
    assert spoken(asked) == ["您说的是13800138000，对吗？"]
    assert confirmed.state.node == "thanks"
    assert spoken(confirmed) == ["谢谢，我们会联系13800138000"]
    assert len(encode(confirmed.state)) < 300


def test_a_subflow_outcome_leads_where_the_caller_said() -> None:
    flow = parse_flow(HEADER + PARENT, "inline.yaml", subflows(COLLECT_MOBILE))
    decision = last(flow, started(), no_match(), no_match())
    assert decision.state.node == "agent"


def test_one_subflow_used_twice_gets_two_copies() -> None:
    flow = flow_with(
        """\
        start: first
        defaults: {on_max_attempts: bye}
        nodes:
          first: {type: subflow, flow: collect_mobile, next: second, outcomes: {failed: bye}}
          second: {type: subflow, flow: collect_mobile, next: bye, outcomes: {failed: bye}}
          bye: {type: hangup, prompt: "{mobile}"}
        """,
        COLLECT_MOBILE,
    )
    assert "first.ask" in flow.nodes  # type: ignore[attr-defined]
    assert "second.ask" in flow.nodes  # type: ignore[attr-defined]
    decisions = walk(
        flow,  # type: ignore[arg-type]
        started(),
        speech("13800138000"),
        keys("1"),
        speech("13900139000"),
        keys("1"),
    )
    assert [d.state.node for d in decisions] == [
        "first.ask",
        "first.ask",
        "second.ask",
        "second.ask",
        "bye",
    ]
    assert spoken(decisions[-1]) == ["13900139000"]


def test_subflows_may_use_subflows() -> None:
    contact = """\
    subflow: contact
    start: intro
    nodes:
      intro: {type: say, prompt: 请留下联系方式, next: phone}
      phone: {type: subflow, flow: collect_mobile, next: done, outcomes: {failed: done}}
      done: {type: return}
    """
    flow = flow_with(
        """\
        start: get
        defaults: {on_max_attempts: bye}
        nodes:
          get: {type: subflow, flow: contact, next: bye}
          bye: {type: hangup, prompt: "{mobile}"}
        """,
        textwrap.dedent(contact),
        COLLECT_MOBILE,
    )
    decisions = walk(flow, started(), speech("13800138000"), keys("1"))  # type: ignore[arg-type]
    assert decisions[0].state.node == "get.phone.ask"
    assert spoken(decisions[0]) == ["请留下联系方式", "请说出您的手机号码"]
    assert spoken(decisions[-1]) == ["13800138000"]


def test_flows_directories_load_their_subflows(tmp_path: Path) -> None:
    (tmp_path / "subflows").mkdir()
    (tmp_path / "subflows" / "collect_mobile.yaml").write_text(COLLECT_MOBILE, encoding="utf-8")
    (tmp_path / "main.yaml").write_text('flow: main\nversion: "1"\n' + PARENT, encoding="utf-8")
    flows = load_flows(tmp_path)
    assert "get_phone.ask" in flows["main"].nodes
    # A single file finds the subflows beside it too.
    assert load_flow_file(tmp_path / "main.yaml") == flows["main"]


def _problems(text: str, *library: str) -> list[Problem]:
    with pytest.raises(FlowError) as raised:
        parse_flow(HEADER + textwrap.dedent(text), "inline.yaml", subflows(*library))
    return raised.value.problems


def _subflow_problems(*library: str) -> list[str]:
    with pytest.raises(FlowError) as raised:
        subflows(*library)
    return [str(problem) for problem in raised.value.problems]


def test_a_flow_must_handle_every_outcome_and_only_real_ones() -> None:
    problems = _problems(
        """\
        start: get
        defaults: {on_max_attempts: bye}
        nodes:
          get:
            type: subflow
            flow: collect_mobile
            next: bye
            outcomes: {maybe: bye}
          bye: {type: hangup, prompt: 再见}
        """,
        COLLECT_MOBILE,
    )
    messages = [f"{p.line}: {p.message}" for p in problems]
    assert any(
        "may return 'failed' (expected a target for it under 'outcomes')" in m for m in messages
    )
    assert any(m.startswith("12: subflow 'collect_mobile' never returns 'maybe'") for m in messages)


def test_an_unknown_subflow_and_a_return_in_a_flow_are_errors() -> None:
    problems = _problems(
        """\
        start: get
        defaults: {on_max_attempts: bye}
        nodes:
          get: {type: subflow, flow: nowhere, next: bye}
          back: {type: return}
          bye: {type: hangup, prompt: 再见}
        """,
        COLLECT_MOBILE,
    )
    assert [(p.line, p.where) for p in problems] == [
        (8, "node 'get'.flow"),
        (9, "node 'back'.type"),
    ]
    assert "unknown subflow 'nowhere' (expected one of: collect_mobile)" in problems[0].message
    assert "only for subflows" in problems[1].message


def test_subflow_files_are_checked_on_their_own_lines() -> None:
    broken = """\
    subflow: broken
    start: ask
    nodes:
      ask: {type: collect, slot: x, slot_type: digits, prompt: "{nope}", next: gone}
    """
    assert _subflow_problems(textwrap.dedent(broken)) == [
        "subflows/s0.yaml:4: node 'ask'.next: unknown node 'gone' (expected one of: ask)",
        "subflows/s0.yaml:4: node 'ask'.prompt: unknown placeholder '{nope}' (expected one of: call.callee, call.caller, call.date, call.time, x, params.NAME, queue.position/wait_minutes/agents_online/agents_idle, assistant.reason/duration_ms/transcript, transfer.failure)",
        "subflows/s0.yaml:3: subflow: no 'return' node (expected at least one, to go back)",
    ]


def test_subflows_that_use_each_other_in_a_loop_are_rejected() -> None:
    a = "subflow: a\nstart: go\nnodes:\n  go: {type: subflow, flow: b, next: back}\n  back: {type: return}\n"
    b = "subflow: b\nstart: go\nnodes:\n  go: {type: subflow, flow: a, next: back}\n  back: {type: return}\n"
    messages = _subflow_problems(a, b)
    assert any("subflows use each other in a loop (a → b → a)" in m for m in messages)


def test_subflow_ids_must_be_valid_and_unique() -> None:
    one = "subflow: same\nstart: r\nnodes:\n  r: {type: return}\n"
    messages = _subflow_problems(one, one, "subflow: Bad-Id\nstart: r\nnodes: {}\n")
    assert messages == [
        "subflows/s1.yaml:1: subflow: subflow id 'same' is also used by subflows/s0.yaml",
        "subflows/s2.yaml:1: subflow.subflow: got str 'Bad-Id', expected the subflow's id (lowercase letters, digits, '_')",
    ]
