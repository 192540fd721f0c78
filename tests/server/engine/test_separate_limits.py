"""Separate limit targets for no-input and no-match (docs/flows.md, section 7): the node's
kind-specific target, then its `on_max`, then the flow's kind-specific one, then
`defaults.on_max_attempts` — at the question and while confirming."""

from __future__ import annotations

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.flow import Defaults, Escalation, Flow
from server.engine.flowfile import FlowError
from server.engine.interpreter import Decision
from tests.server.engine.test_interpreter import (
    keys,
    make_flow,
    no_input,
    no_match,
    speech,
    started,
    walk,
)

_TARGETS = """\
  silent: {type: hangup, prompt: 听不到您。}
  confused: {type: hangup, prompt: 我来帮您。}
  either: {type: hangup, prompt: 两种都到这里。}
  flow_silent: {type: hangup, prompt: 全局静音。}
  flow_confused: {type: hangup, prompt: 全局不懂。}
  anywhere: {type: hangup, prompt: 最后的去处。}
"""


def _flow(node_fields: str, defaults: str = "") -> Flow:
    return make_flow(
        f"""\
start: ask
defaults:
  on_max_attempts: anywhere
  max_no_input: 2
  max_no_match: 2
{defaults}nodes:
  ask:
    type: menu
    prompt: 请按1
    choices: [{{intent: one, key: "1", next: either}}]
{node_fields}{_TARGETS}"""
    )


def _leaves(flow: Flow, failure: pb.DecideNextActionRequest) -> Decision:
    return walk(flow, started(), failure, failure)[-1]


@pytest.mark.parametrize(
    ("node_fields", "defaults", "on_silence", "on_confusion"),
    [
        # the node's own targets, one per kind
        (
            "    on_max_no_input: silent\n    on_max_no_match: confused\n",
            "",
            "silent",
            "confused",
        ),
        # one kind-specific target; the other kind falls back on the node's on_max
        ("    on_max_no_input: silent\n    on_max: either\n", "", "silent", "either"),
        # the node's on_max comes before the flow's kind-specific targets
        (
            "    on_max: either\n",
            "  on_max_no_input: flow_silent\n  on_max_no_match: flow_confused\n",
            "either",
            "either",
        ),
        # the flow's kind-specific targets, before on_max_attempts
        ("", "  on_max_no_match: flow_confused\n", "anywhere", "flow_confused"),
        (
            "    on_max_no_match: confused\n",
            "  on_max_no_input: flow_silent\n",
            "flow_silent",
            "confused",
        ),
        ("", "", "anywhere", "anywhere"),
    ],
)
def test_each_kind_of_failure_leaves_for_its_own_target(
    node_fields: str, defaults: str, on_silence: str, on_confusion: str
) -> None:
    flow = _flow(node_fields, defaults)

    assert _leaves(flow, no_input()).state.node == on_silence
    assert _leaves(flow, no_match()).state.node == on_confusion


def test_keys_that_pick_nothing_are_no_matches_and_no_keys_are_no_inputs() -> None:
    flow = _flow("    on_max_no_input: silent\n    on_max_no_match: confused\n")

    assert _leaves(flow, keys("9")).state.node == "confused"
    assert _leaves(flow, keys("")).state.node == "silent"


def test_the_limit_reached_decides_not_the_mix_of_failures() -> None:
    flow = _flow("    on_max_no_input: silent\n    on_max_no_match: confused\n")

    # One silence, then two no-matches: the no-match limit (2) is the one reached.
    decision = walk(flow, started(), no_input(), no_match(), no_match())[-1]

    assert decision.state.node == "confused"


def test_the_failure_budget_still_comes_first() -> None:
    flow = _flow(
        "    on_max_no_input: silent\n    on_max_no_match: confused\n",
        "  max_failures: 2\n  on_failure_budget: anywhere\n",
    )

    assert walk(flow, started(), no_input(), no_match())[-1].state.node == "anywhere"


_CONFIRMING = (
    """\
start: ask
defaults:
  on_max_attempts: anywhere
  on_max_no_input: flow_silent
nodes:
  ask:
    type: collect
    prompt: 请输入六位账号
    slot: account
    slot_type: digits
    min_length: 6
    max_length: 6
    confirm: 您输入的是{account}，确认请按1，重新输入请按2。
    max_no_match: 1
    max_no_input: 1
    on_max_no_match: confused
    next: either
"""
    + _TARGETS
)


@pytest.mark.parametrize(
    ("failure", "target"),
    [(no_input(), "flow_silent"), (speech("今天天气不错"), "confused")],
)
def test_the_targets_apply_while_confirming_and_the_value_is_dropped(
    failure: pb.DecideNextActionRequest, target: str
) -> None:
    decisions = walk(make_flow(_CONFIRMING), started(), keys("123456"), failure)

    assert decisions[1].state.confirming is True
    assert decisions[-1].state.node == target
    assert "account" not in decisions[-1].state.slots


def test_precedence_is_one_rule_for_engine_and_tools() -> None:
    defaults = Defaults(on_max_attempts="all", on_max_no_match="flow_match")
    escalation = Escalation(on_max_no_input="input")

    assert escalation.leave_to("no_input", defaults) == "input"
    assert escalation.leave_to("no_match", defaults) == "flow_match"
    assert Escalation(on_max="mine").leave_to("no_match", defaults) == "mine"
    assert Escalation().leave_to("no_input", defaults) == "all"


@pytest.mark.parametrize(
    ("node_fields", "defaults", "where"),
    [
        ("    on_max_no_input: nowhere\n", "", "node 'ask'.on_max_no_input"),
        ("", "  on_max_no_match: nowhere\n", "defaults.on_max_no_match"),
    ],
)
def test_an_unknown_limit_target_is_an_error(node_fields: str, defaults: str, where: str) -> None:
    with pytest.raises(FlowError) as caught:
        _flow(node_fields, defaults)

    assert f"{where}: unknown node 'nowhere'" in str(caught.value)
