"""What a gateway answers when the server cannot: a safe, precomputed decision.

The fallback is a DecideNextActionResponse, so each vendor renders it with the same code as
any decision and it is always in the vendor's own format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from dialogue.v1 import dialogue_pb2 as pb
from telemetry.masking import mask_phone

T = TypeVar("T")
_log = logging.getLogger("dialogue.gateway")

TRANSFER = "transfer"
HANG_UP = "hangup"


@dataclass(frozen=True, slots=True)
class FallbackPolicy:
    """How to rescue a call when no decision comes in time.

    Attributes:
        mode: "transfer" (say `transfer_prompt`, then transfer) or "hangup" (say `hangup_prompt`).
        skill_queue: Skill-queue access code to transfer to (used when set).
        phone_number: E.164 number to transfer to (used when no skill queue is set).
        transfer_prompt: What the caller hears before the transfer.
        hangup_prompt: What the caller hears before the hang-up.
        language: BCP-47 language of the prompts.
    """

    mode: str = TRANSFER
    skill_queue: str = ""
    phone_number: str = ""
    transfer_prompt: str = "系统繁忙，正在为您转接人工客服，请稍候。"
    hangup_prompt: str = "抱歉，系统繁忙，请稍后再拨。再见。"
    language: str = "zh-CN"

    @property
    def transfers(self) -> bool:
        """True when the fallback transfers (a transfer needs somewhere to go)."""
        return self.mode == TRANSFER and bool(self.skill_queue or self.phone_number)


def fallback_response(policy: FallbackPolicy, reason: str) -> pb.DecideNextActionResponse:
    """The decision to render when the server failed; `reason` goes into the diagnostics."""
    response = pb.DecideNextActionResponse()
    response.diagnostics.note = f"fallback: {reason}"
    prompts = pb.Prompts(barge_in=pb.BargeIn(mode=pb.BARGE_IN_MODE_NONE))
    text = policy.transfer_prompt if policy.transfers else policy.hangup_prompt
    prompts.items.add().tts.CopyFrom(pb.TextToSpeech(text=text, language=policy.language))
    if policy.transfers:
        transfer = pb.Transfer(mode=pb.TRANSFER_MODE_BLIND)
        if policy.skill_queue:
            transfer.skill_queue.access_code = policy.skill_queue
        else:
            transfer.phone_number = policy.phone_number
        response.play_and_transfer.CopyFrom(pb.PlayAndTransfer(prompts=prompts, transfer=transfer))
    else:
        response.play_and_hang_up.CopyFrom(
            pb.PlayAndHangUp(prompts=prompts, reason=pb.HANG_UP_REASON_FAILED)
        )
        response.dialogue_over = True
    return response


def render_or_fallback(
    render: Callable[[pb.DecideNextActionResponse, bool], T],
    response: pb.DecideNextActionResponse,
    *,
    is_fallback: bool,
    policy: FallbackPolicy,
    call_id: str,
) -> tuple[T, pb.DecideNextActionResponse]:
    """The vendor answer to a decision, or to the fallback when rendering the decision failed.

    A rendering bug must not become a 500 or dead air, so every vendor renders through here.

    Args:
        render: The vendor's pure renderer: (decision, whether it is a fallback) → answer.
        response: The decision (or the decider's own fallback).
        is_fallback: Whether `response` already is a fallback.
        policy: The fallback policy, for the rescue decision.
        call_id: For the log line.

    Returns:
        The answer and the decision it renders (the rescue when the decision could not be).
    """
    try:
        return render(response, is_fallback), response
    except Exception:
        _log.exception(
            "cannot render the decision for call %s; answering the fallback", mask_phone(call_id)
        )
        rescue = fallback_response(policy, "render error")
        return render(rescue, True), rescue
