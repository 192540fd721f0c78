"""The fallback decision: transfer when somewhere to go is configured, else a polite hang-up."""

from __future__ import annotations

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from gateways.fallback import FallbackPolicy, fallback_response, render_or_fallback


def test_transfer_to_a_skill_queue_with_an_uninterruptible_apology() -> None:
    response = fallback_response(FallbackPolicy(skill_queue="10086001"), "DEADLINE_EXCEEDED")
    assert response.WhichOneof("action") == "play_and_transfer"
    transfer = response.play_and_transfer
    assert transfer.transfer.skill_queue.access_code == "10086001"
    assert transfer.prompts.barge_in.mode == pb.BARGE_IN_MODE_NONE
    assert "转接人工" in transfer.prompts.items[0].tts.text
    assert response.diagnostics.note == "fallback: DEADLINE_EXCEEDED"
    assert not response.dialogue_over


def test_transfer_to_a_phone_number() -> None:
    response = fallback_response(FallbackPolicy(phone_number="+8610086"), "UNAVAILABLE")
    assert response.play_and_transfer.transfer.phone_number == "+8610086"


def test_transfer_mode_without_a_target_hangs_up_politely() -> None:
    response = fallback_response(FallbackPolicy(), "UNAVAILABLE")
    assert response.WhichOneof("action") == "play_and_hang_up"
    assert response.play_and_hang_up.reason == pb.HANG_UP_REASON_FAILED
    assert response.dialogue_over


def test_hang_up_mode_ignores_a_configured_target() -> None:
    policy = FallbackPolicy(
        mode="hangup", skill_queue="1", hangup_prompt="Sorry, goodbye.", language="en-US"
    )
    response = fallback_response(policy, "INTERNAL")
    assert response.play_and_hang_up.prompts.items[0].tts.text == "Sorry, goodbye."
    assert response.play_and_hang_up.prompts.items[0].tts.language == "en-US"


def test_a_decision_that_cannot_be_rendered_is_answered_with_the_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    policy = FallbackPolicy(skill_queue="10086001")
    seen: list[bool] = []

    def render(response: pb.DecideNextActionResponse, is_fallback: bool) -> str:
        seen.append(is_fallback)
        if response.HasField("wait"):
            raise KeyError("a bug in the vendor mapping")
        return response.WhichOneof("action") or ""

    decision = pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=1000))
    answer, rendered = render_or_fallback(
        render, decision, is_fallback=False, policy=policy, call_id="+8613800138000"
    )
    assert (answer, seen) == ("play_and_transfer", [False, True])
    assert rendered.diagnostics.note == "fallback: render error"
    assert "13800138000" not in caplog.text  # the call id is masked in the log


def test_a_decision_that_renders_is_answered_as_it_is() -> None:
    decision = pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=1000))
    answer, rendered = render_or_fallback(
        lambda response, is_fallback: (response.WhichOneof("action"), is_fallback),
        decision,
        is_fallback=True,
        policy=FallbackPolicy(),
        call_id="c",
    )
    assert answer == ("wait", True)
    assert rendered is decision
