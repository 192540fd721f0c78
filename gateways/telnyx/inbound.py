"""Telnyx webhooks in: what each event means, and the DecideNextActionRequest it becomes.

Per webhook, `parse_webhook` reads it defensively (no field is guaranteed) and `react` decides
what it means: nothing to do (acknowledge), commands that need no decision (`answer` an inbound
call; the hang-up, transfer or recording that was waiting for a prompt to end), or a
`DecideNextActionRequest` for the server, whose answer `outbound.plan_commands` renders.
Pure: no web framework, no network, no clock, no mutable module state.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from dialogue.v1 import dialogue_pb2 as pb
from gateways.payloads import CallbackError
from gateways.telnyx.client_state import (
    GATHERING,
    KIND_ASSISTANT,
    KIND_INBOUND,
    KIND_LEG,
    KIND_LISTEN,
    KIND_QUEUE,
    KIND_RECORD,
    KIND_THEN,
    KIND_TRANSFER,
    ClientState,
    command_id,
    decode_state,
    encode_state,
    is_outbound,
)
from gateways.telnyx.outbound import RUNNING_GATHER, CommandContext
from gateways.telnyx.settings import Settings
from gateways.telnyx.values import (
    INT32_MAX,
    KEYS,
    MAX_DIGITS,
    MAX_ID,
    MAX_NUMBER,
    MAX_REASON,
    MAX_TEXT,
    Command,
    clip,
    is_destination,
    text_of,
    unreadable,
)

CAPABILITIES: Final = (pb.CAPABILITY_VOICE_ASSISTANT,)
"""What Telnyx can do beyond the basic actions, sent on every request (Call.capabilities):
AI assistants (HandToAssistant). No queue figures: QueryQueue is degraded (outbound)."""

EVENT_TYPES: Final = (
    "call.initiated",
    "call.answered",
    "call.gather.ended",
    "call.dtmf.received",
    "call.playback.started",
    "call.playback.ended",
    "call.speak.started",
    "call.speak.ended",
    "call.ai_gather.ended",
    "call.ai_gather.partial_results",
    "call.ai_gather.message_history_updated",
    "call.conversation.ended",
    "call.transcription",
    "call.recording.saved",
    "call.recording.error",
    "call.bridged",
    "call.hangup",
)
"""Every event type this gateway reads; any other is acknowledged and logged."""

_REQUEST_ID_PREFIX = "telnyx-"
_FAILURE_ID_PREFIX = "telnyx-failed-"

# The bodies a follow-up command (carried in client_state) may have: the state is echoed by
# Telnyx, so it is checked again on the way back rather than trusted.
_FOLLOW_UP_FIELDS: Final = MappingProxyType(
    {
        "hangup": frozenset(),
        "transfer": frozenset({"to", "from", "timeout_secs", "audio_url", "media_name"}),
        "record_start": frozenset(
            {"format", "channels", "max_length", "timeout_secs", "play_beep"}
        ),
    }
)


@dataclass(frozen=True, slots=True)
class Webhook:
    """One parsed webhook.

    Attributes:
        event_id: `data.id`, or a hash of `data` when Telnyx sent none.
        event_type: `data.event_type`, e.g. "call.gather.ended".
        occurred_at: `data.occurred_at` as sent (ISO 8601); may be empty.
        payload: `data.payload`; `{}` when absent.
        call_control_id: `payload.call_control_id`; empty when absent.
        state: `payload.client_state` decoded, None when absent or not ours.
        attempt: `meta.attempt` (delivery attempt, 1 first); 0 when absent.
    """

    event_id: str
    event_type: str
    occurred_at: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    call_control_id: str = ""
    state: ClientState | None = None
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Reaction:
    """What to do about one webhook.

    Attributes:
        call_control_id: The leg the commands go to ("" when the webhook names none).
        note: Why, for the log.
        commands: Commands to send at once, without asking the server.
        request: When set: ask the server, then send `plan_commands(response, context)`.
        context: The context for planning the decision's commands (set with `request`).
    """

    call_control_id: str
    note: str
    commands: tuple[Command, ...] = ()
    request: pb.DecideNextActionRequest | None = None
    context: CommandContext | None = None


def parse_webhook(body: Any) -> Webhook:
    """Reads one webhook (API version 2: `{"data": {...}, "meta": {...}}`).

    Raises:
        CallbackError: the body is not an object, has no `data` object, or no event type; or it
            holds text that is not valid Unicode (a lone surrogate from a JSON `\\ud800`
            escape) or is nested more than 24 levels deep.
    """
    if not isinstance(body, Mapping):
        raise CallbackError("the body must be a JSON object")
    problem = unreadable(body)
    if problem:
        raise CallbackError(f"the body {problem}")
    data = body.get("data")
    if not isinstance(data, Mapping):
        if "event_type" in body:
            raise CallbackError(
                "this is a webhook API version 1 body: set the Call Control application to "
                "webhook API version 2"
            )
        raise CallbackError("the body has no data object")
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise CallbackError("data.event_type is required")
    event_id = text_of(data.get("id"))
    if not event_id:
        # No id to dedupe by: the content itself is the identity of the event.
        canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
        event_id = "sha256-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    raw_payload = data.get("payload")
    payload: Mapping[str, Any] = raw_payload if isinstance(raw_payload, Mapping) else {}
    meta = body.get("meta")
    attempt = _integer(meta.get("attempt")) if isinstance(meta, Mapping) else None
    return Webhook(
        event_id=event_id,
        event_type=event_type.strip(),
        occurred_at=text_of(data.get("occurred_at")),
        payload=payload,
        call_control_id=text_of(payload.get("call_control_id")),
        state=decode_state(payload.get("client_state")),
        attempt=attempt or 0,
    )


def request_id(event_id: str) -> str:
    """The request id of an event: stable per `data.id`, so a redelivery is idempotent."""
    candidate = _REQUEST_ID_PREFIX + event_id
    if len(candidate) <= MAX_ID:
        return candidate
    return _REQUEST_ID_PREFIX + hashlib.sha256(event_id.encode("utf-8")).hexdigest()


def react(webhook: Webhook, settings: Settings | None = None) -> Reaction:
    """What one webhook means: acknowledge only, commands at once, or a decision to ask for.

    Never raises for a parsed webhook: unknown event types and webhooks without a call are
    acknowledged with a note.
    """
    settings = settings or Settings()
    state = webhook.state
    ccid = webhook.call_control_id or (state.call_control_id if state else "")
    if not ccid:
        return Reaction("", f"{webhook.event_type} names no call_control_id: nothing to do")
    handler = _HANDLERS.get(webhook.event_type)
    if handler is None:
        return Reaction(ccid, f"unknown event type {webhook.event_type!r}: acknowledged")
    if state is None and webhook.event_type in _MID_CALL:
        # Every command this gateway sends mid-call carries a client_state, and Telnyx echoes
        # the last one on every later webhook of the leg: without one this is no call we run
        # (another application's, or one that never started), and asking the server would
        # start a dialogue mid-call with the welcome.
        return Reaction(ccid, f"{webhook.event_type} without our client_state: not our call")
    return handler(webhook, ccid, settings)


def _on_initiated(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    direction = text_of(webhook.payload.get("direction"))
    if state is not None and state.kind == KIND_LEG:
        return Reaction(ccid, "the new leg of a transfer is ringing")
    if direction == "incoming" or (not direction and state is None):
        # Answer at once, without asking the server: Telnyx hangs up an inbound call that gets
        # no command in time, and the dialogue starts with call.answered.
        body = {
            "client_state": encode_state(ClientState(KIND_INBOUND)),
            "command_id": command_id(webhook.event_id, 0, "answer"),
        }
        return Reaction(ccid, "inbound call: answering", commands=(("answer", body),))
    return Reaction(ccid, f"{direction or 'outgoing'} call initiated: waiting for call.answered")


def _on_answered(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    if state is not None and state.kind == KIND_LEG:
        if not state.a_leg:
            return Reaction(ccid, "a transfer leg answered, but its state names no call")
        request = _base_request(webhook, state.a_leg, state)
        request.transfer_finished.outcome = pb.TRANSFER_OUTCOME_SUCCEEDED
        request.transfer_finished.reason = "answered"
        return _decide(
            request, webhook, state.a_leg, state, "transfer target answered", settings=settings
        )
    request = _base_request(webhook, ccid, state)
    outbound = is_outbound(state)
    request.call.direction = pb.CALL_DIRECTION_OUTBOUND if outbound else pb.CALL_DIRECTION_INBOUND
    request.call_started.SetInParent()
    return _decide(
        request, webhook, ccid, state, "call answered: dialogue starts", settings=settings
    )


def _on_gather_ended(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    status = text_of(webhook.payload.get("status")).lower()
    raw_digits = text_of(webhook.payload.get("digits"))
    if status in ("call_hangup", "cancelled", "cancelled_amd"):
        # call_hangup: call.hangup follows and ends the dialogue; cancelled: the command that
        # replaced the gather is what happens next; cancelled_amd: answering-machine detection
        # (never started by this gateway) took over.
        return Reaction(ccid, f"gather ended {status}: nothing to decide")
    if not status and not raw_digits:
        return Reaction(ccid, "gather ended without status or digits: nothing to decide")
    request = _base_request(webhook, ccid, state)
    if state is not None and state.kind == KIND_QUEUE:
        # The timer standing in for QueryQueue ended: Telnyx knows no queue figures, so every
        # one stays unset (unknown, not zero); keys pressed meanwhile are not an answer.
        request.queue_status_reported.SetInParent()
        request.queue_status.SetInParent()
        return _decide(request, webhook, ccid, state, "queue status: unknown", settings=settings)
    digits, terminator = _split_terminator(raw_digits, state.terminator if state else "")
    maximum = state.maximum if state else 0
    if status == "invalid":
        request.no_match.input = clip(raw_digits, MAX_TEXT)
        request.no_match.reason = "invalid: keys not among the valid digits or wrong count"
    elif not _is_keys(digits):
        request.no_match.input = clip(raw_digits, MAX_TEXT)
        request.no_match.reason = "the gathered digits are not keys"
    elif maximum and len(digits) > maximum:
        # The gather took one key more than the menu so that a terminator is always collected;
        # a key that is not the terminator is one too many.
        request.no_match.input = clip(raw_digits, MAX_TEXT)
        request.no_match.reason = f"more than {maximum} keys"
    elif status == "timeout" and not digits:
        request.no_input.SetInParent()
    else:
        entered = request.digits_entered
        entered.SetInParent()
        entered.digits = digits
        entered.terminator = terminator
        entered.timed_out = status == "timeout"
    note = f"gather ended {status or 'with digits'}"
    return _decide(request, webhook, ccid, state, note, settings=settings)


def _on_dtmf(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    digit = text_of(webhook.payload.get("digit")).upper()
    kind = state.kind if state else ""
    if kind in GATHERING:
        return Reaction(ccid, "key pressed during a gather: the gather reports it")
    if kind == KIND_RECORD:
        if state is not None and state.stop_key and digit == state.stop_key:
            body = {"command_id": command_id(webhook.event_id, 0, "record_stop")}
            return Reaction(
                ccid, "stop key pressed: stopping the recording", (("record_stop", body),)
            )
        return Reaction(ccid, "key pressed while recording: ignored")
    if kind in (KIND_THEN, KIND_TRANSFER, KIND_LEG):
        return Reaction(ccid, f"key pressed while the call is leaving the bot ({kind}): ignored")
    if len(digit) != 1 or digit not in KEYS:
        return Reaction(ccid, f"dtmf {digit[:8]!r} is not a key: ignored")
    request = _base_request(webhook, ccid, state)
    request.digits_entered.digits = digit
    return _decide(request, webhook, ccid, state, "key pressed outside a gather", settings=settings)


def _on_started(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    return Reaction(ccid, f"{webhook.event_type}: acknowledged")


def _on_prompt_ended(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    status = text_of(webhook.payload.get("status")).lower()
    kind = state.kind if state else ""
    if status == "call_hangup":
        return Reaction(ccid, "prompt ended by the hang-up: call.hangup follows")
    if state is not None and kind == KIND_THEN:
        return _follow_up(webhook, ccid, state)
    if kind in (*GATHERING, KIND_RECORD, KIND_TRANSFER, KIND_LEG):
        return Reaction(ccid, f"prompt ended during {kind}: nothing to decide")
    request = _base_request(webhook, ccid, state)
    if status in ("failed", "file_not_found"):
        request.platform_error.code = status
        request.platform_error.message = clip(
            text_of(webhook.payload.get("failure_reason")) or f"{webhook.event_type} {status}",
            MAX_REASON,
        )
    else:
        request.playback_finished.SetInParent()
        media = text_of(webhook.payload.get("media_name")) or text_of(
            webhook.payload.get("media_url")
        )
        request.playback_finished.media = clip(media, MAX_TEXT)
    note = f"{webhook.event_type} {status}".strip()
    return _decide(request, webhook, ccid, state, note, settings=settings)


def _on_ai_gather_ended(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    request = _base_request(webhook, ccid, state)
    finished = request.ai_gather_finished
    finished.SetInParent()
    result = webhook.payload.get("result")
    if isinstance(result, Mapping):
        finished.parameters.update(_struct_safe(result))
    finished.complete = text_of(webhook.payload.get("status")).lower() == "valid"
    _add_messages(finished.message_history, webhook.payload.get("message_history"))
    return _decide(request, webhook, ccid, state, "AI gather ended", settings=settings)


def _add_messages(messages: Any, history: Any) -> None:
    """A webhook's `message_history` (role, content) appended to repeated ConversationMessage."""
    if isinstance(history, list):
        for entry in history:
            if isinstance(entry, Mapping):
                message = messages.add()
                message.role = clip(text_of(entry.get("role")), MAX_NUMBER)
                message.content = clip(text_of(entry.get("content")), MAX_TEXT)


def _on_progress(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    return Reaction(ccid, f"{webhook.event_type}: logged, call.ai_gather.ended decides")


def _on_transcription(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    """A final transcript while a key gather listens is the caller's answer (SpeechRecognized);
    the gather it replaces is stopped before the decision's commands (outbound.RUNNING_GATHER)."""
    state = webhook.state
    data = webhook.payload.get("transcription_data")
    data = data if isinstance(data, Mapping) else {}
    text = text_of(data.get("transcript"))
    if state is None or state.kind != KIND_LISTEN:
        return Reaction(ccid, "transcript while the call does not listen: ignored")
    if data.get("is_final") is False:
        return Reaction(ccid, "interim transcript: ignored")
    if not text:
        return Reaction(ccid, "empty transcript: ignored")
    request = _base_request(webhook, ccid, state)
    request.speech_recognized.text = clip(text, MAX_TEXT)
    confidence = _number(data.get("confidence"))
    if confidence is not None:
        request.speech_recognized.confidence = min(max(confidence, 0.0), 1.0)
    return _decide(
        request,
        webhook,
        ccid,
        state,
        "speech recognized",
        settings=settings,
        running=RUNNING_GATHER,
    )


def _on_conversation_ended(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    """The AI assistant gave the call back: AssistantFinished, and the flow goes on."""
    state = webhook.state
    if state is None or state.kind != KIND_ASSISTANT:
        return Reaction(ccid, "conversation ended, but no assistant of ours had the call")
    request = _base_request(webhook, ccid, state)
    finished = request.assistant_finished
    finished.SetInParent()
    finished.reason = clip(text_of(webhook.payload.get("reason")), MAX_REASON)
    seconds = _number(webhook.payload.get("duration_sec"))
    if seconds is not None and seconds > 0:
        finished.duration_ms = min(round(seconds * 1000), INT32_MAX)
    _add_messages(finished.transcript, webhook.payload.get("message_history"))
    return _decide(request, webhook, ccid, state, "assistant finished", settings=settings)


def _on_recording_saved(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    request = _base_request(webhook, ccid, state)
    finished = request.recording_finished
    finished.SetInParent()
    payload = webhook.payload
    for urls_key in ("public_recording_urls", "recording_urls"):
        urls = payload.get(urls_key)
        if isinstance(urls, Mapping):
            uri = text_of(urls.get("mp3")) or text_of(urls.get("wav"))
            if uri:
                finished.recording_uri = clip(uri, MAX_TEXT)
                break
    started = _instant(text_of(payload.get("recording_started_at")))
    ended = _instant(text_of(payload.get("recording_ended_at")))
    if started is not None and ended is not None and ended >= started:
        finished.duration_ms = min(round((ended - started).total_seconds() * 1000), INT32_MAX)
    return _decide(request, webhook, ccid, state, "recording saved", settings=settings)


def _on_recording_error(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    request = _base_request(webhook, ccid, state)
    request.platform_error.code = "recording_error"
    request.platform_error.message = clip(
        text_of(webhook.payload.get("reason")) or "recording failed", MAX_REASON
    )
    return _decide(request, webhook, ccid, state, "recording failed", settings=settings)


def _on_bridged(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    return Reaction(ccid, "call bridged: the transfer outcome comes with call.answered/hangup")


# Why the new leg of a transfer hung up before it was answered: `hangup_cause` as the OpenAPI
# spec lists it (`timeout`: the transfer's timeout_secs ran out while it rang), else the SIP
# response of `sip_hangup_cause` (RFC 3261). Anything else (normal_clearing, originator_cancel,
# time_limit, unspecified, other codes) says no reason: UNSPECIFIED.
_HANGUP_CAUSE_FAILURES: Final = MappingProxyType(
    {
        "user_busy": pb.TRANSFER_FAILURE_BUSY,
        "no_answer": pb.TRANSFER_FAILURE_NO_ANSWER,
        "timeout": pb.TRANSFER_FAILURE_NO_ANSWER,
        "call_rejected": pb.TRANSFER_FAILURE_REJECTED,
        "not_found": pb.TRANSFER_FAILURE_UNREACHABLE,
    }
)
_SIP_FAILURES: Final = MappingProxyType(
    {
        "486": pb.TRANSFER_FAILURE_BUSY,  # Busy Here
        "600": pb.TRANSFER_FAILURE_BUSY,  # Busy Everywhere
        "408": pb.TRANSFER_FAILURE_NO_ANSWER,  # Request Timeout
        "480": pb.TRANSFER_FAILURE_NO_ANSWER,  # Temporarily Unavailable
        "603": pb.TRANSFER_FAILURE_REJECTED,  # Decline
        "404": pb.TRANSFER_FAILURE_UNREACHABLE,  # Not Found
        "484": pb.TRANSFER_FAILURE_UNREACHABLE,  # Address Incomplete
        "604": pb.TRANSFER_FAILURE_UNREACHABLE,  # Does Not Exist Anywhere
    }
)


def transfer_failure(hangup_cause: str, sip_hangup_cause: str) -> pb.TransferFailure.ValueType:
    """Why a transfer's new leg failed, from its call.hangup causes (case and spaces ignored)."""
    cause = hangup_cause.strip().lower()
    if cause in _HANGUP_CAUSE_FAILURES:
        return _HANGUP_CAUSE_FAILURES[cause]
    return _SIP_FAILURES.get(sip_hangup_cause.strip(), pb.TRANSFER_FAILURE_UNSPECIFIED)


def _on_hangup(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    payload = webhook.payload
    cause = text_of(payload.get("hangup_cause"))
    sip_cause = text_of(payload.get("sip_hangup_cause"))
    reason = clip(f"{cause} (SIP {sip_cause})" if cause and sip_cause else cause, MAX_REASON)
    if state is not None and state.kind == KIND_LEG:
        if not state.a_leg:
            return Reaction(ccid, "a transfer leg hung up, but its state names no call")
        # The target did not take the call (busy, no answer, rejected); after a bridge the
        # dialogue is over already and the server answers EndDialogue.
        request = _base_request(webhook, state.a_leg, state)
        request.transfer_finished.outcome = pb.TRANSFER_OUTCOME_FAILED
        request.transfer_finished.reason = reason or "transfer leg hung up"
        request.transfer_finished.failure = transfer_failure(cause, sip_cause)
        return _decide(
            request, webhook, state.a_leg, state, "transfer leg hung up", settings=settings
        )
    request = _base_request(webhook, ccid, state)
    request.call_ended.SetInParent()
    source = text_of(payload.get("hangup_source")).lower()
    outbound = is_outbound(state)
    # On an inbound call the caller is the customer; on an outbound call the callee is.
    customer, platform = ("callee", "caller") if outbound else ("caller", "callee")
    if source == customer:
        request.call_ended.hung_up_by = pb.HANG_UP_PARTY_CALLER
    elif source == platform:
        request.call_ended.hung_up_by = pb.HANG_UP_PARTY_SYSTEM
    request.call_ended.reason = reason
    return _decide(
        request, webhook, ccid, state, f"call hung up ({source or 'unknown'})", settings=settings
    )


# Events that only happen after a command of ours, which always sets a client_state.
_MID_CALL: Final = frozenset(
    {
        "call.gather.ended",
        "call.dtmf.received",
        "call.playback.ended",
        "call.speak.ended",
        "call.ai_gather.ended",
        "call.conversation.ended",
        "call.transcription",
        "call.recording.saved",
        "call.recording.error",
    }
)

_Handler = Callable[[Webhook, str, Settings], Reaction]
_HANDLERS: Final[Mapping[str, _Handler]] = MappingProxyType(
    {
        "call.initiated": _on_initiated,
        "call.answered": _on_answered,
        "call.gather.ended": _on_gather_ended,
        "call.dtmf.received": _on_dtmf,
        "call.playback.started": _on_started,
        "call.speak.started": _on_started,
        "call.playback.ended": _on_prompt_ended,
        "call.speak.ended": _on_prompt_ended,
        "call.ai_gather.ended": _on_ai_gather_ended,
        "call.ai_gather.partial_results": _on_progress,
        "call.ai_gather.message_history_updated": _on_progress,
        "call.conversation.ended": _on_conversation_ended,
        "call.transcription": _on_transcription,
        "call.recording.saved": _on_recording_saved,
        "call.recording.error": _on_recording_error,
        "call.bridged": _on_bridged,
        "call.hangup": _on_hangup,
    }
)


def _follow_up(webhook: Webhook, ccid: str, state: ClientState) -> Reaction:
    """The command that was waiting for the prompt to end (hang-up, transfer, recording)."""
    name = state.next_command
    allowed = _FOLLOW_UP_FIELDS.get(name)
    if allowed is None:
        return Reaction(ccid, f"prompt ended; unknown follow-up {name!r} ignored")
    body = {key: value for key, value in state.next_body.items() if key in allowed}
    ref = state.ref or webhook.event_id
    if name == "transfer":
        to = body.get("to")
        if not isinstance(to, str) or not is_destination(to):
            return Reaction(ccid, "prompt ended; the transfer in the state has no valid 'to'")
        body["client_state"] = encode_state(
            ClientState(
                KIND_TRANSFER,
                ref=ref,
                outbound=state.outbound,
                transcribing=state.transcribing,
                transcription_language=state.transcription_language,
            )
        )
        body["target_leg_client_state"] = encode_state(
            ClientState(KIND_LEG, ref=ref, outbound=state.outbound, a_leg=ccid)
        )
    elif name == "record_start":
        body.setdefault("format", "mp3")
        body.setdefault("channels", "single")
        body["client_state"] = encode_state(
            ClientState(
                KIND_RECORD,
                ref=ref,
                transcribing=state.transcribing,
                transcription_language=state.transcription_language,
                outbound=state.outbound,
                stop_key=state.stop_key,
                call_control_id=ccid,
            )
        )
    # Index 1: the decision's prompt was its command 0. Every end-of-prompt webhook of that
    # prompt carries the same ref, so they all yield this one command_id.
    body["command_id"] = command_id(ref, 1, name)
    return Reaction(ccid, f"prompt ended: {name}", commands=((name, body),))


def _decide(
    request: pb.DecideNextActionRequest,
    webhook: Webhook,
    ccid: str,
    state: ClientState | None,
    note: str,
    *,
    settings: Settings,
    running: str = "",
) -> Reaction:
    context = CommandContext(
        event_id=webhook.event_id,
        call_control_id=ccid,
        outbound=is_outbound(state),
        settings=settings,
        running=running,
        transcribing=state is not None and state.transcribing,
        transcription_language=state.transcription_language if state is not None else "",
    )
    return Reaction(ccid, note, request=request, context=context)


def _base_request(
    webhook: Webhook, call_id: str, state: ClientState | None
) -> pb.DecideNextActionRequest:
    """The request's id, call and time; the event is set by the caller."""
    request = pb.DecideNextActionRequest(request_id=request_id(webhook.event_id))
    call = request.call
    call.call_id = clip(call_id, MAX_ID)
    call.platform = pb.PLATFORM_TELNYX
    call.capabilities.extend(CAPABILITIES)
    payload = webhook.payload
    if state is not None and state.kind == KIND_LEG:
        # An event of the transfer's new leg reported on the original call: its numbers are
        # the new leg's, not the call's.
        return _with_time(request, webhook)
    outbound = is_outbound(state)
    caller, callee = text_of(payload.get("from")), text_of(payload.get("to"))
    call.caller = clip(caller, MAX_NUMBER)
    call.callee = clip(callee, MAX_NUMBER)
    if outbound:
        call.direction = pb.CALL_DIRECTION_OUTBOUND
        selector = (state.selector if state else "") or caller
    else:
        if state is not None and state.kind == KIND_INBOUND:
            call.direction = pb.CALL_DIRECTION_INBOUND
        selector = callee
    call.flow_selector = clip(selector, MAX_ID)
    return _with_time(request, webhook)


def _with_time(request: pb.DecideNextActionRequest, webhook: Webhook) -> pb.DecideNextActionRequest:
    instant = _instant(webhook.occurred_at)
    if instant is not None:
        stamp = Timestamp()
        stamp.FromDatetime(instant)
        request.occurred_at.CopyFrom(stamp)
    return request


def failure_request(
    context: CommandContext, name: str, cid: str, code: str, detail: str
) -> tuple[pb.DecideNextActionRequest, CommandContext]:
    """The event to report when Telnyx refused a command for good, and the context of its answer.

    A refused `transfer` is a failed transfer (the flow's failure path runs); any other
    command is a `PlatformError`. Only for refusals other than "call already ended".
    """
    request = pb.DecideNextActionRequest(request_id=clip(_FAILURE_ID_PREFIX + cid, MAX_ID))
    request.call.call_id = clip(context.call_control_id, MAX_ID)
    request.call.platform = pb.PLATFORM_TELNYX
    request.call.capabilities.extend(CAPABILITIES)
    reason = clip(f"{name} refused: {code} {detail}".strip(), MAX_REASON)
    if name == "transfer":
        request.transfer_finished.outcome = pb.TRANSFER_OUTCOME_FAILED
        request.transfer_finished.reason = reason
    else:
        request.platform_error.code = clip(code, MAX_NUMBER)
        request.platform_error.message = reason
    # What ran before the refused command is no longer known to run (a refused gather_stop or
    # ai_assistant_stop means it had ended), so the answer is planned as on a quiet leg.
    return request, replace(context, event_id=f"failed-{cid}", running="")


def _is_keys(digits: str) -> bool:
    return len(digits) <= MAX_DIGITS and all(key in KEYS for key in digits.upper())


def _split_terminator(digits: str, terminator: str) -> tuple[str, str]:
    """Digits without a trailing terminator (when Telnyx includes it), and that terminator."""
    digits = digits.strip().upper()
    if terminator and len(digits) > 0 and digits.endswith(terminator):
        return digits[: -len(terminator)], terminator
    return digits, ""


def _struct_safe(value: Any) -> Any:
    """JSON values a Struct can hold: integers beyond a double's exact range become text."""
    if isinstance(value, Mapping):
        return {str(key): _struct_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_struct_safe(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= 2**53 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _number(value: Any) -> float | None:
    """A finite JSON number, or None (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 12:
        return int(value.strip())
    return None


def _instant(text: str) -> datetime | None:
    """An ISO 8601 time with a zone (Telnyx writes `2018-02-02T22:25:27.521992Z`)."""
    if not text:
        return None
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None or instant.year < 1:
        return None
    try:
        # A Timestamp is UTC: a time whose UTC is before year 1 or after 9999 has none.
        instant.astimezone(UTC)
    except OverflowError:
        return None
    return instant
