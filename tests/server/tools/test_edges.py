"""The moves the tools know for transfer failures by reason and for separate limit targets
(graph edges, reachability in `dialogue validate`)."""

from __future__ import annotations

import textwrap

from server.engine.flow import Flow
from server.engine.flowfile import parse_flow
from server.tools.common import node_edges
from server.tools.graph import to_mermaid
from server.tools.lint import lint_flow

_FLOW = """\
flow: t
version: "1"
start: ask
defaults:
  on_max_attempts: bye
  max_no_input: 2
nodes:
  ask:
    type: menu
    prompt: 转人工请按0
    choices: [{intent: agent, key: "0", next: agent}]
    on_max_no_input: still_there
    on_max_no_match: explain
  still_there: {type: hangup, prompt: 您好像不方便说话，再见。}
  explain: {type: hangup, prompt: 请稍后再拨，再见。}
  agent:
    type: transfer
    target: {skill_queue: "100"}
    on_busy: busy
    on_unreachable: closed
    on_failure: bye
  busy: {type: hangup, prompt: 坐席忙。}
  closed: {type: hangup, prompt: 暂时无法接通。}
  bye: {type: hangup, prompt: 再见。}
"""


def _flow(text: str = _FLOW) -> Flow:
    return parse_flow(textwrap.dedent(text), "t.yaml")


def _moves(flow: Flow, node_id: str) -> list[tuple[str, str, str]]:
    return [(e.target, e.label, e.kind) for e in node_edges(flow, flow.nodes[node_id])]


def test_a_transfer_has_an_edge_per_reason_and_one_for_the_rest() -> None:
    assert _moves(_flow(), "agent") == [
        ("busy", "transfer failed: busy", "failure"),
        ("closed", "transfer failed: unreachable", "failure"),
        ("bye", "transfer failed, other", "failure"),
    ]


def test_a_transfer_with_only_on_failure_keeps_its_one_edge() -> None:
    plain = _FLOW.replace("    on_busy: busy\n    on_unreachable: closed\n", "")

    assert _moves(_flow(plain), "agent") == [("bye", "transfer failed", "failure")]


def test_separate_limit_targets_are_separate_edges() -> None:
    assert _moves(_flow(), "ask")[1:] == [
        ("still_there", "no-input ×2", "escalation"),
        ("explain", "no-match ×3", "escalation"),
    ]


def test_the_drawing_and_the_checks_follow_the_new_edges() -> None:
    flow = _flow()

    mermaid = to_mermaid(flow)
    # Every target reached only by a reason or a kind of limit is reachable, not reported.
    assert lint_flow(flow, _FLOW) == []
    for label in ("transfer failed: busy", "no-input ×2", "no-match ×3"):
        assert label in mermaid


def test_on_max_beside_both_kind_specific_targets_is_reported_unused() -> None:
    both = _FLOW.replace(
        "    on_max_no_match: explain\n", "    on_max_no_match: explain\n    on_max: bye\n"
    )

    findings = lint_flow(_flow(both), both)

    assert [(f.line, f.severity, f.where) for f in findings] == [
        (14, "warning", "node 'ask'.on_max")
    ]
    assert "is never used" in findings[0].message
    assert lint_flow(_flow(_FLOW.replace("on_max_no_input", "on_max")), _FLOW) == []
