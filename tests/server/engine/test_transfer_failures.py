"""Transfer failures by reason: `on_busy`/`on_no_answer`/`on_rejected`/`on_unreachable` beside
`on_failure`, and `{transfer.failure}` for templates and conditions (docs/flows.md, section 4)."""

from __future__ import annotations

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.flow import TRANSFER_FAILURES, Transfer
from server.engine.flowfile import FlowError, parse_flow, parse_subflows
from server.engine.interpreter import Decision
from server.engine.state import decode, encode
from tests.server.engine.test_interpreter import (
    HEADER,
    last,
    make_flow,
    make_request,
    spoken,
    started,
    walk,
)

_FLOW = """\
start: agent
defaults: {on_max_attempts: other}
nodes:
  agent:
    type: transfer
    prompt: 正在转接
    target: {skill_queue: "100"}
    on_busy: busy
    on_no_answer: no_answer
    on_failure: failed
  busy:
    type: hangup
    prompt: 坐席忙，请稍后再拨。
  no_answer:
    type: hangup
    prompt: 暂时无人接听。
  failed:
    type: branch
    cases:
      - when: {transfer.failure: rejected}
        next: rejected
    default: other
  rejected:
    type: hangup
    prompt: 坐席拒接。
  other:
    type: hangup
    prompt: "转接失败（{transfer.failure}）。"
"""


def _failed(
    failure: pb.TransferFailure.ValueType,
    outcome: pb.TransferOutcome.ValueType = pb.TRANSFER_OUTCOME_FAILED,
) -> pb.DecideNextActionRequest:
    finished = pb.TransferFinished(outcome=outcome, reason="cause 42", failure=failure)
    return make_request("transfer_finished", finished)


def _after(request: pb.DecideNextActionRequest, flow: str = _FLOW) -> Decision:
    return last(make_flow(flow), started(), request)


@pytest.mark.parametrize(
    ("failure", "node", "said"),
    [
        (pb.TRANSFER_FAILURE_BUSY, "busy", "坐席忙，请稍后再拨。"),
        (pb.TRANSFER_FAILURE_NO_ANSWER, "no_answer", "暂时无人接听。"),
        (pb.TRANSFER_FAILURE_REJECTED, "rejected", "坐席拒接。"),
        (pb.TRANSFER_FAILURE_UNREACHABLE, "other", "转接失败（unreachable）。"),
        (pb.TRANSFER_FAILURE_UNSPECIFIED, "other", "转接失败（unknown）。"),
    ],
)
def test_a_failed_transfer_goes_where_its_reason_leads(
    failure: pb.TransferFailure.ValueType, node: str, said: str
) -> None:
    decision = _after(_failed(failure))

    assert decision.state.node == node
    assert spoken(decision) == [said]


def test_an_unspecified_outcome_with_a_reason_is_still_that_failure() -> None:
    decision = _after(_failed(pb.TRANSFER_FAILURE_BUSY, pb.TRANSFER_OUTCOME_UNSPECIFIED))

    assert decision.state.node == "busy"


def test_a_reason_the_contract_does_not_know_is_unknown() -> None:
    # A newer gateway may send a failure value this server has no name for.
    decision = _after(_failed(99))  # type: ignore[arg-type]

    assert decision.state.node == "other"
    assert decision.state.transfer_failure == "unknown"


def test_the_note_names_the_reason_the_platform_gave() -> None:
    note = _after(_failed(pb.TRANSFER_FAILURE_BUSY)).response.diagnostics.note
    unknown = _after(_failed(pb.TRANSFER_FAILURE_UNSPECIFIED)).response.diagnostics.note

    assert "transfer failed (busy): cause 42" in note
    assert "transfer failed: cause 42" in unknown


def test_the_reason_is_remembered_across_turns_and_stored() -> None:
    flow = make_flow(
        """\
        start: agent
        defaults: {on_max_attempts: bye}
        nodes:
          agent:
            type: transfer
            target: {phone_number: "+8610086"}
            on_failure: ask
          ask:
            type: menu
            prompt: 按1重试
            choices: [{intent: retry, key: "1", next: why}]
          why:
            type: say
            prompt: "上次：{transfer.failure}"
            next: bye
          bye: {type: hangup}
        """
    )
    decisions = walk(
        flow,
        started(),
        _failed(pb.TRANSFER_FAILURE_NO_ANSWER),
        make_request("digits_entered", pb.DigitsEntered(digits="1")),
    )

    assert spoken(decisions[-1]) == ["上次：no_answer"]
    assert decode(encode(decisions[1].state)).transfer_failure == "no_answer"


def test_success_ignores_the_failure_targets() -> None:
    succeeded = pb.TransferFinished(outcome=pb.TRANSFER_OUTCOME_SUCCEEDED)

    decision = _after(make_request("transfer_finished", succeeded))

    assert decision.state.over is True
    assert decision.state.transfer_failure == ""


def test_the_reason_targets_are_read_checked_and_listed() -> None:
    flow = make_flow(_FLOW)
    node = flow.nodes["agent"]

    assert isinstance(node, Transfer)
    assert (node.on_busy, node.on_no_answer, node.on_rejected, node.on_unreachable) == (
        "busy",
        "no_answer",
        "",
        "",
    )
    assert node.targets() == ("busy", "no_answer", "failed")
    assert [node.on_failed(failure) for failure in (*TRANSFER_FAILURES, "unknown")] == [
        "busy",
        "no_answer",
        "failed",
        "failed",
        "failed",
    ]


def test_an_unknown_reason_target_is_an_error_at_its_line() -> None:
    with pytest.raises(FlowError) as caught:
        make_flow(_FLOW.replace("on_busy: busy", "on_busy: nowhere"))

    assert "node 'agent'.on_busy: unknown node 'nowhere'" in str(caught.value)


def test_an_unknown_placeholder_names_the_transfer_family() -> None:
    with pytest.raises(FlowError) as caught:
        make_flow(_FLOW.replace("{transfer.failure}）", "{transfer.reason}）"))

    assert "transfer.failure)" in str(caught.value)


_SUBFLOW = """\
subflow: reach_agent
start: ask
nodes:
  ask:
    type: menu
    prompt: 转人工请按0
    choices: [{intent: agent, key: "0", next: agent}]
    max_no_input: 1
    max_no_match: 1
    on_max_no_input: silent
    on_max_no_match: lost
  agent:
    type: transfer
    target: {skill_queue: "100"}
    on_busy: busy
    on_failure: failed
  silent: {type: return, outcome: silent}
  lost: {type: return, outcome: lost}
  busy: {type: return, outcome: busy}
  failed: {type: return, outcome: failed}
"""


def test_inside_a_subflow_the_reason_and_limit_targets_are_renamed_with_it() -> None:
    library = parse_subflows({"reach_agent.yaml": _SUBFLOW})
    flow = parse_flow(
        HEADER
        + """\
start: use
defaults: {on_max_attempts: bye}
nodes:
  use:
    type: subflow
    flow: reach_agent
    next: bye
    outcomes: {silent: bye_silent, lost: bye_lost, busy: bye_busy, failed: bye}
  bye_silent: {type: hangup, prompt: 听不到您。}
  bye_lost: {type: hangup, prompt: 没听懂。}
  bye_busy: {type: hangup, prompt: 坐席忙。}
  bye: {type: hangup, prompt: 再见。}
""",
        "inline.yaml",
        library,
    )

    def after(*requests: pb.DecideNextActionRequest) -> list[str]:
        return spoken(walk(flow, started(), *requests)[-1])

    assert after(make_request("no_input")) == ["听不到您。"]
    assert after(make_request("digits_entered", pb.DigitsEntered(digits="9"))) == ["没听懂。"]
    assert after(
        make_request("digits_entered", pb.DigitsEntered(digits="0")),
        _failed(pb.TRANSFER_FAILURE_BUSY),
    ) == ["坐席忙。"]
    assert after(
        make_request("digits_entered", pb.DigitsEntered(digits="0")),
        _failed(pb.TRANSFER_FAILURE_REJECTED),
    ) == ["再见。"]
