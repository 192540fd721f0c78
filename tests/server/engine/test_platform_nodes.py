"""The queue_status and assistant nodes: reading them, the platform round trips, capabilities,
and the figures and outcome they leave for templates and conditions."""

from __future__ import annotations

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.flow import AssistantNode, QueueStatusNode, TransferTarget
from server.engine.flowfile import FlowError
from tests.server.engine.test_interpreter import (
    action,
    make_flow,
    make_request,
    played,
    spoken,
    started,
    walk,
)

_QUEUE_FLOW = """\
start: hello
defaults: {on_max_attempts: bye}
nodes:
  hello:
    type: say
    prompt: 您好。
    next: ask_queue
  ask_queue:
    type: queue_status
    queue: {skill_queue: "q1"}
    next: figures
    on_unavailable: agent
  figures:
    type: branch
    cases:
      - when: {queue.agents_online: "0"}
        next: nobody
      - when: {queue.agents_online: {absent: true}}
        next: unknown
    default: known
  known:
    type: say
    prompt: "第{queue.position}位，约{queue.wait_minutes}分钟，空闲{queue.agents_idle}位。"
    next: agent
  unknown:
    type: say
    prompt: 排队情况未知。
    next: agent
  nobody:
    type: hangup
    prompt: 无人在线。
  agent:
    type: transfer
    target: {skill_queue: "q1"}
    on_failure: bye
  bye:
    type: hangup
"""


def _with(
    request: pb.DecideNextActionRequest, *capabilities: pb.Capability.ValueType
) -> pb.DecideNextActionRequest:
    request.call.capabilities.extend(capabilities)
    return request


def _reported(**figures: int) -> pb.DecideNextActionRequest:
    request = _with(make_request("queue_status_reported"), pb.CAPABILITY_QUEUE_STATUS)
    request.queue_status.CopyFrom(pb.QueueStatus(**figures))
    return request


def test_the_queue_node_is_read_with_next_as_the_default_way_around() -> None:
    flow = make_flow(_QUEUE_FLOW.replace("    on_unavailable: agent\n", ""))
    assert flow.nodes["ask_queue"] == QueueStatusNode(
        "ask_queue", TransferTarget("skill_queue", "q1"), "figures", "figures"
    )


def test_prompts_before_the_queue_question_play_first_then_the_platform_is_asked() -> None:
    flow = make_flow(_QUEUE_FLOW)
    first, second = walk(
        flow,
        _with(started(), pb.CAPABILITY_QUEUE_STATUS),
        _with(played(), pb.CAPABILITY_QUEUE_STATUS),
    )
    assert (action(first), first.state.deferred) == ("play", True)
    assert action(second) == "query_queue"
    assert second.response.query_queue == pb.QueryQueue(skill_queue="q1")


def test_the_figures_fill_templates_with_the_wait_rounded_up_in_minutes() -> None:
    flow = make_flow(_QUEUE_FLOW)
    *_, decision = walk(
        flow,
        _with(started(), pb.CAPABILITY_QUEUE_STATUS),
        _with(played(), pb.CAPABILITY_QUEUE_STATUS),
        _reported(position=2, agents_online=3, agents_idle=0, estimated_wait_ms=60_001),
    )
    assert action(decision) == "play_and_transfer"
    assert spoken(decision) == ["第2位，约2分钟，空闲0位。"]
    assert decision.state.queue == {
        "position": 2,
        "agents_online": 3,
        "agents_idle": 0,
        "estimated_wait_ms": 60_001,
    }


@pytest.mark.parametrize(
    ("figures", "heard"),
    [({"agents_online": 0}, ["无人在线。"]), ({"position": 4}, ["排队情况未知。"])],
)
def test_zero_agents_and_unknown_agents_take_different_branches(
    figures: dict[str, int], heard: list[str]
) -> None:
    flow = make_flow(_QUEUE_FLOW)
    *_, decision = walk(
        flow,
        _with(started(), pb.CAPABILITY_QUEUE_STATUS),
        _with(played(), pb.CAPABILITY_QUEUE_STATUS),
        _reported(**figures),
    )
    assert spoken(decision) == heard


def test_without_the_capability_the_platform_is_never_asked() -> None:
    decision = walk(make_flow(_QUEUE_FLOW), started())[-1]
    assert action(decision) == "play_and_transfer"
    assert "lacks CAPABILITY_QUEUE_STATUS" in decision.response.diagnostics.note


_ASSISTANT_FLOW = """\
start: helper
slots: [account]
defaults: {on_max_attempts: bye}
nodes:
  helper:
    type: assistant
    assistant_id: "{params.assistant_id}"
    greeting: 你好
    instructions: "客户账号{account}"
    context: [account]
    next: after
    on_unavailable: bye
  after:
    type: hangup
    prompt: "助手结束：{assistant.reason}"
  bye:
    type: hangup
    prompt: 再见。
"""


def test_the_assistant_gets_its_id_greeting_instructions_and_context() -> None:
    flow = make_flow(_ASSISTANT_FLOW)
    assert isinstance(flow.nodes["helper"], AssistantNode)
    request = _with(started(parameters={"assistant_id": "a-1"}), pb.CAPABILITY_VOICE_ASSISTANT)
    decision = walk(flow, request)[-1]
    assert decision.response.hand_to_assistant == pb.HandToAssistant(
        assistant_id="a-1", greeting="你好", instructions="客户账号", language="zh-CN"
    )


def test_the_assistant_s_end_goes_on_with_its_reason_and_transcript() -> None:
    flow = make_flow(_ASSISTANT_FLOW)
    finished = make_request(
        "assistant_finished",
        pb.AssistantFinished(
            reason="done",
            duration_ms=1200,
            transcript=[pb.ConversationMessage(role="user", content="hi")],
        ),
    )
    caps = pb.CAPABILITY_VOICE_ASSISTANT
    *_, decision = walk(flow, _with(started(), caps), _with(finished, caps))
    assert spoken(decision) == ["助手结束：done"]
    assert decision.state.assistant == {
        "reason": "done",
        "duration_ms": "1200",
        "transcript": "user: hi",
    }


def test_a_hang_up_while_the_assistant_has_the_call_ends_the_dialogue() -> None:
    flow = make_flow(_ASSISTANT_FLOW)
    caps = pb.CAPABILITY_VOICE_ASSISTANT
    ended = _with(make_request("call_ended", pb.CallEnded()), caps)
    *_, decision = walk(flow, _with(started(), caps), ended)
    assert (action(decision), decision.state.over) == ("end_dialogue", True)


def test_without_a_voice_assistant_the_call_goes_to_on_unavailable() -> None:
    decision = walk(make_flow(_ASSISTANT_FLOW), started())[-1]
    assert spoken(decision) == ["再见。"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ('queue: {skill_queue: "q1"}', 'queue: {skill_queue: "q1", agent_id: "a"}'),
            "has 2 queues, expected exactly one of: current_queue, skill_queue, agent_id",
        ),
        (('queue: {skill_queue: "q1"}', "queue: {current_queue: false}"), "current_queue: true"),
    ],
)
def test_a_queue_node_names_exactly_one_queue(change: tuple[str, str], message: str) -> None:
    with pytest.raises(FlowError) as raised:
        make_flow(_QUEUE_FLOW.replace(*change))
    assert message in str(raised.value)


def test_an_assistant_context_slot_must_be_known() -> None:
    with pytest.raises(FlowError) as raised:
        make_flow(_ASSISTANT_FLOW.replace("context: [account]", "context: [nope]"))
    assert "unknown placeholder '{nope}'" in str(raised.value)
