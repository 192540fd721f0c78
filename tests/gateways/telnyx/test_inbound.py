"""Webhooks in: the issue-15 events (transcripts, the assistant's end, the queue timer)."""

from __future__ import annotations

from typing import Any

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from gateways.telnyx import client_state, inbound, outbound
from server.validation import validate_decide
from tests.gateways.telnyx.spec import load_spec


def _react(event_type: str, state: client_state.ClientState | None, **payload: Any) -> Any:
    body = {"call_control_id": "v3:abc", **payload}
    if state is not None:
        body["client_state"] = client_state.encode_state(state)
    webhook = inbound.parse_webhook(
        {"data": {"event_type": event_type, "id": "e", "payload": body}}
    )
    reaction = inbound.react(webhook)
    if reaction.request is not None:
        assert validate_decide(reaction.request) == []
        assert list(reaction.request.call.capabilities) == [pb.CAPABILITY_VOICE_ASSISTANT]
    return reaction


LISTEN = client_state.ClientState(client_state.KIND_LISTEN, transcribing=True)


def test_a_final_transcript_while_listening_is_speech_recognized() -> None:
    data = {"transcript": " bill ", "is_final": True, "confidence": 0.9}
    reaction = _react("call.transcription", LISTEN, transcription_data=data)
    assert reaction.request.speech_recognized.text == "bill"
    assert abs(reaction.request.speech_recognized.confidence - 0.9) < 1e-6
    assert reaction.context.running == outbound.RUNNING_GATHER
    assert reaction.context.transcribing


def test_transcripts_that_are_not_answers_are_ignored() -> None:
    interim = {"transcript": "bi", "is_final": False}
    assert _react("call.transcription", LISTEN, transcription_data=interim).request is None
    final = {"transcript": "bill", "is_final": True}
    playing = client_state.ClientState(client_state.KIND_PLAY)
    assert _react("call.transcription", playing, transcription_data=final).request is None
    assert _react("call.transcription", LISTEN, transcription_data={}).request is None


def test_the_assistants_end_gives_the_call_back() -> None:
    bot = client_state.ClientState(client_state.KIND_ASSISTANT)
    reaction = _react("call.conversation.ended", bot, reason="assistant_ended", duration_sec=3)
    finished = reaction.request.assistant_finished
    assert (finished.reason, finished.duration_ms) == ("assistant_ended", 3000)
    assert reaction.context.running == ""


def test_the_queue_timer_reports_unknown_figures() -> None:
    queue = client_state.ClientState(client_state.KIND_QUEUE)
    reaction = _react("call.gather.ended", queue, status="timeout", digits="")
    request = reaction.request
    assert request.HasField("queue_status_reported")
    assert request.HasField("queue_status")
    assert not request.queue_status.HasField("position")


def test_a_key_beyond_the_menus_maximum_is_no_match() -> None:
    menu = client_state.ClientState(client_state.KIND_LISTEN, terminator="#", maximum=3)
    assert _react("call.gather.ended", menu, status="valid", digits="123#").request.HasField(
        "digits_entered"
    )
    assert _react("call.gather.ended", menu, status="valid", digits="1234").request.HasField(
        "no_match"
    )


def test_mid_call_events_without_our_state_start_nothing() -> None:
    for event_type in ("call.gather.ended", "call.dtmf.received", "call.transcription"):
        assert _react(event_type, None, status="valid", digits="1", digit="1").request is None


def _spec_hangup_causes() -> list[str]:
    payload = load_spec()["components"]["schemas"]["CallHangup"]["properties"]["payload"]
    causes: list[str] = payload["properties"]["hangup_cause"]["enum"]
    return causes


@pytest.mark.parametrize(
    ("cause", "sip", "failure"),
    [
        ("user_busy", "486", pb.TRANSFER_FAILURE_BUSY),
        ("no_answer", "", pb.TRANSFER_FAILURE_NO_ANSWER),
        ("timeout", "", pb.TRANSFER_FAILURE_NO_ANSWER),
        ("call_rejected", "603", pb.TRANSFER_FAILURE_REJECTED),
        ("not_found", "", pb.TRANSFER_FAILURE_UNREACHABLE),
        (" USER_BUSY ", "", pb.TRANSFER_FAILURE_BUSY),
        # Causes that name no reason leave it to the SIP response, if it names one.
        ("unspecified", "600", pb.TRANSFER_FAILURE_BUSY),
        ("normal_clearing", "408", pb.TRANSFER_FAILURE_NO_ANSWER),
        ("", "484", pb.TRANSFER_FAILURE_UNREACHABLE),
        ("originator_cancel", "487", pb.TRANSFER_FAILURE_UNSPECIFIED),
        ("time_limit", "", pb.TRANSFER_FAILURE_UNSPECIFIED),
        ("something_new", "unspecified", pb.TRANSFER_FAILURE_UNSPECIFIED),
    ],
)
def test_a_transfer_legs_hangup_causes_name_why_it_failed(
    cause: str, sip: str, failure: pb.TransferFailure.ValueType
) -> None:
    leg = client_state.ClientState(client_state.KIND_LEG, a_leg="v3:caller")
    payload = {"hangup_cause": cause, "sip_hangup_cause": sip} if sip else {"hangup_cause": cause}

    reaction = _react("call.hangup", leg, **payload)

    assert reaction.request.call.call_id == "v3:caller"
    assert reaction.request.transfer_finished.outcome == pb.TRANSFER_OUTCOME_FAILED
    assert reaction.request.transfer_finished.failure == failure


def test_every_cause_mapped_is_one_the_spec_lists() -> None:
    spec_causes = set(_spec_hangup_causes())
    mapped = {
        cause
        for cause in spec_causes
        if inbound.transfer_failure(cause, "") != pb.TRANSFER_FAILURE_UNSPECIFIED
    }

    assert mapped == {"user_busy", "no_answer", "timeout", "call_rejected", "not_found"}
