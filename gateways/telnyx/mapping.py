"""Telnyx Call Control webhooks ⇄ dialogue.v1, as pure functions.

Telnyx reports every call event as a signed webhook (API version 2) and does what it is told by
Call Control commands, `POST /calls/{call_control_id}/actions/<command>`. So, per webhook:

1. `parse_webhook` reads it defensively (no field is guaranteed);
2. `react` decides what the event means: nothing to do (acknowledge), commands that need no
   decision (`answer` an inbound call; the hang-up, transfer or recording that was waiting for
   a prompt to end), or a `DecideNextActionRequest` for the server;
3. `plan_commands` turns the server's decision into the commands to send, in order, each as
   `(command_name, body)` with its `command_id` and `client_state` already set.

`client_state` is the gateway's memory: Telnyx echoes it on every later webhook of the call
leg, so it says what the call is doing (a gather runs, prompts play before a hang-up, …) and
what comes next, and the gateway itself keeps no per-call state. `command_id` is derived from
the webhook's `data.id`, so a redelivered webhook yields the same ids and Telnyx ignores the
repeats. Everything here is pure: no web framework, no network, no clock, no mutable module
state. The mapping and every degradation are documented in `docs/gateways/telnyx.md`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from dialogue.v1 import dialogue_pb2 as pb
from gateways.payloads import json_problem

Command = tuple[str, dict[str, Any]]
"""One Call Control command: its name (the last path segment) and its JSON body."""

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
    "call.recording.saved",
    "call.recording.error",
    "call.bridged",
    "call.hangup",
)
"""Every event type this gateway reads; any other is acknowledged and logged."""

COMMANDS: Final = (
    "answer",
    "speak",
    "playback_start",
    "playback_stop",
    "gather",
    "gather_using_speak",
    "gather_using_audio",
    "gather_using_ai",
    "transfer",
    "hangup",
    "record_start",
    "record_stop",
)
"""Every command `react` and `plan_commands` can produce."""

# What client_state says the call leg is doing (the "k" of the state).
KIND_INBOUND: Final = "in"  # set by our `answer`: the call came in
KIND_OUTBOUND: Final = "out"  # set by the dialer that placed an outbound call (documented)
KIND_LISTEN: Final = "listen"  # a gather runs; its call.gather.ended reports the keys
KIND_WAIT: Final = "wait"  # a silent gather used as a timer (Wait)
KIND_PLAY: Final = "play"  # prompts play and their end is reported (Play)
KIND_THEN: Final = "then"  # prompts play; when they end, the command in the state follows
KIND_RECORD: Final = "rec"  # a recording runs
KIND_TRANSFER: Final = "xfer"  # a transfer was started
KIND_AI: Final = "ai"  # gather_using_ai runs; its call.ai_gather.ended reports
KIND_LEG: Final = "leg"  # the new leg of a transfer (set through target_leg_client_state)
_KINDS: Final = frozenset(
    {
        KIND_INBOUND,
        KIND_OUTBOUND,
        KIND_LISTEN,
        KIND_WAIT,
        KIND_PLAY,
        KIND_THEN,
        KIND_RECORD,
        KIND_TRANSFER,
        KIND_AI,
        KIND_LEG,
    }
)
# Events that mean "a gather or assistant is in charge": prompt ends and keys are its business.
_GATHERING: Final = frozenset({KIND_LISTEN, KIND_WAIT, KIND_AI})

DEFAULT_VOICE: Final = "Telnyx.KokoroTTS.af"
"""The voice when neither the prompt nor TELNYX_VOICES names one (the spec's own example)."""
DEFAULT_LISTEN_TIMEOUT_MS: Final = 5000
PLAY_NOTHING_WAIT_MS: Final = 1000
"""A Play with nothing playable waits this long instead, so the platform still reports back."""
EMPTY_DECISION_WAIT_MS: Final = 5000
"""A decision with no action the gateway knows: wait this long, then ask again."""

# Telnyx's limits (OpenAPI spec): TTS payloads, digits per gather, record and transfer times.
_MAX_PAYLOAD = 3000
_MAX_GATHER_DIGITS = 128
_MAX_RECORD_S = 14400
_TRANSFER_TIMEOUT_S = (5, 600)
_INT32_MAX = 2**31 - 1
_GATHER_DEFAULT_TOTAL_MS = 60000

# Limits of the dialogue.v1 contract (server/validation.py): clipped so that a well-formed
# webhook never becomes an INVALID_ARGUMENT request.
_MAX_ID = 128
_MAX_NUMBER = 64
_MAX_TEXT = 4096
_MAX_REASON = 1024
_MAX_DIGITS = 64
_MAX_STATE_CHARS = 4096

# Deeper than any webhook or client_state is; shallow enough that the recursive code after the
# check (json.dumps, Struct conversion; the server's protobuf parser stops at 100 levels of
# messages, about 33 of JSON in a Struct) stays within its limits.
_MAX_DEPTH = 24

_REQUEST_ID_PREFIX = "telnyx-"
_FAILURE_ID_PREFIX = "telnyx-failed-"
# command_ids are UUIDs like Telnyx's own examples, derived (v5) from event id, index and name.
_COMMAND_NAMESPACE = uuid.UUID("1f6d3c8a-7b2e-4d59-a0c4-8e5b2f9d6a31")

_KEYS = frozenset("0123456789*#ABCD")
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")
_DIALLABLE = re.compile(r"\+?\d{3,32}(,[0-9A-DwW*#]{1,64})?")
_E164 = re.compile(r"\+\d{3,20}")
_SIP_URI = re.compile(r"sips?:[^\s,]{1,512}")

# Speak and gather_using_speak `language` (the spec's enum), and the tag a bare language means.
_SPEAK_LANGUAGES: Final = frozenset(
    # The spec's enum, as it lists it.
    "arb cmn-CN cy-GB da-DK de-DE en-AU en-GB en-GB-WLS en-IN en-US es-ES es-MX es-US "  # noqa: SIM905
    "fr-CA fr-FR hi-IN is-IS it-IT ja-JP ko-KR nb-NO nl-NL pl-PL pt-BR pt-PT ro-RO ru-RU "
    "sv-SE tr-TR".split()
)
_SPEAK_DEFAULT_REGION: Final = MappingProxyType(
    {
        "ar": "arb",
        "zh": "cmn-CN",
        "cmn": "cmn-CN",
        "cy": "cy-GB",
        "da": "da-DK",
        "de": "de-DE",
        "en": "en-US",
        "es": "es-ES",
        "fr": "fr-FR",
        "hi": "hi-IN",
        "is": "is-IS",
        "it": "it-IT",
        "ja": "ja-JP",
        "ko": "ko-KR",
        "nb": "nb-NO",
        "no": "nb-NO",
        "nl": "nl-NL",
        "pl": "pl-PL",
        "pt": "pt-BR",
        "ro": "ro-RO",
        "ru": "ru-RU",
        "sv": "sv-SE",
        "tr": "tr-TR",
    }
)
# gather_using_ai `language` (GoogleTranscriptionLanguage in the spec): bare languages.
_AI_LANGUAGES: Final = frozenset(
    "af sq am ar hy az eu bn bs bg my ca yue zh hr cs da nl en et fil fi fr gl ka de el "  # noqa: SIM905
    "gu iw hi hu is id it ja jv kn kk km ko lo lv lt mk ms ml mr mn ne no fa pl pt pa ro "
    "ru rw sr si sk sl ss st es su sw sv ta te th tn tr ts uk ur uz ve vi xh zu".split()
)
_AI_ALIASES: Final = MappingProxyType({"he": "iw", "nb": "no", "cmn": "zh", "tl": "fil"})

# Said before hanging up when a transfer target has no Telnyx destination.
_TRANSFER_APOLOGY_ZH = "抱歉，暂时无法为您转接，请稍后再拨。再见。"
_TRANSFER_APOLOGY_EN = (
    "Sorry, we cannot transfer your call right now. Please call again later. Goodbye."
)

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


class WebhookError(ValueError):
    """A webhook body the gateway cannot read; answer it 400 with `reason`.

    Attributes:
        reason: Human-readable, names the offending field.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ClientState:
    """What the gateway remembers about a call leg, carried by Telnyx in `client_state`.

    Encoded as base64 of compact JSON with short keys (see `encode_state`), because Telnyx
    echoes it on every later webhook of the leg and some webhooks are frequent.

    Attributes:
        kind: What the leg is doing: one of the KIND_* values.
        ref: The `data.id` of the webhook whose decision set this state; seeds the command_id
            of the follow-up command, so every end-of-prompt webhook yields the same one.
        outbound: The call was placed by the platform (so hang-up sources read the other way).
        next_command: With KIND_THEN: the command to send when the prompt ends.
        next_body: With KIND_THEN: that command's body (no command_id or client_state).
        a_leg: With KIND_LEG: the call_control_id of the call being transferred.
        terminator: With KIND_LISTEN: the key that ends collection, kept out of the digits.
        stop_key: With KIND_RECORD: the key that stops the recording.
        call_control_id: With KIND_RECORD: the leg recorded (call.recording.saved lacks it).
        selector: With KIND_OUTBOUND: the flow selector the dialer chose.
    """

    kind: str
    ref: str = ""
    outbound: bool = False
    next_command: str = ""
    next_body: Mapping[str, Any] = field(default_factory=dict)
    a_leg: str = ""
    terminator: str = ""
    stop_key: str = ""
    call_control_id: str = ""
    selector: str = ""


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
class Settings:
    """Gateway configuration that shapes commands (the routes read it from TELNYX_* variables).

    Attributes:
        default_voice: The TTS voice when the prompt names none and `voices` has no entry.
        voices: BCP-47 language (or bare language) → voice, e.g. {"zh-CN": "AWS.Polly.Zhiyu"}.
        transfer_targets: Transfer targets → a Telnyx destination (E.164 number or SIP URI).
            Keys are `KIND:VALUE` (kind one of phone_number, skill_queue, skill_queue_name,
            agent_id, ivr_flow, sip_uri) or the bare VALUE.
        listen_timeout_ms: How long a gather waits for the first key when the decision does
            not say.
        record_format: `record_start` format: "mp3" or "wav".
    """

    default_voice: str = DEFAULT_VOICE
    voices: Mapping[str, str] = field(default_factory=dict)
    transfer_targets: Mapping[str, str] = field(default_factory=dict)
    listen_timeout_ms: int = DEFAULT_LISTEN_TIMEOUT_MS
    record_format: str = "mp3"


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What `plan_commands` needs besides the decision.

    Attributes:
        event_id: The `data.id` of the webhook the decision answers: seeds every command_id.
        call_control_id: The leg the commands go to (carried in the state of a transfer's new
            leg and of a recording).
        outbound: The call was placed by the platform (kept in every client_state written).
        settings: Voices, transfer targets and defaults.
    """

    event_id: str
    call_control_id: str = ""
    outbound: bool = False
    settings: Settings = field(default_factory=Settings)


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


# -- client_state -----------------------------------------------------------------------------


def encode_state(state: ClientState) -> str:
    """The state as Telnyx carries it: base64 of compact JSON, empty fields left out."""
    data: dict[str, Any] = {"v": 1, "k": state.kind}
    for key, value in (
        ("r", state.ref),
        ("o", 1 if state.outbound else 0),
        ("n", state.next_command),
        ("b", dict(state.next_body)),
        ("a", state.a_leg),
        ("t", state.terminator),
        ("sk", state.stop_key),
        ("c", state.call_control_id),
        ("s", state.selector),
    ):
        if value:
            data[key] = value
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_state(text: Any) -> ClientState | None:
    """The state from `client_state`; None when absent, too long, or not one of ours.

    A state set by another application on the same leg is not an error: it is ignored, and the
    webhook is read as if no state had come with it.
    """
    if not isinstance(text, str) or not text or len(text) > _MAX_STATE_CHARS:
        return None
    try:
        data = json.loads(base64.b64decode(text, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None
    # Checked before anything else reads it: echoed by Telnyx, the state may have been forged.
    if not isinstance(data, dict) or _unreadable(data) or data.get("v") != 1:
        return None
    kind = data.get("k")
    if not isinstance(kind, str) or kind not in _KINDS:
        return None

    def text_of(key: str) -> str:
        value = data.get(key, "")
        return value if isinstance(value, str) else ""

    body = data.get("b", {})
    return ClientState(
        kind=kind,
        ref=text_of("r"),
        outbound=data.get("o") == 1,
        next_command=text_of("n"),
        next_body=body if isinstance(body, dict) else {},
        a_leg=text_of("a"),
        terminator=text_of("t"),
        stop_key=text_of("sk"),
        call_control_id=text_of("c"),
        selector=text_of("s"),
    )


def command_id(event_id: str, index: int, name: str) -> str:
    """The command_id of the index-th command (named `name`) answering the event `event_id`.

    The same event always yields the same ids, so a redelivered webhook, a retried command or a
    second end-of-prompt webhook never executes twice: Telnyx ignores a repeated command_id on
    the same call.
    """
    return str(uuid.uuid5(_COMMAND_NAMESPACE, f"{event_id}/{index}/{name}"))


# -- webhooks in ------------------------------------------------------------------------------


def parse_webhook(body: Any) -> Webhook:
    """Reads one webhook (API version 2: `{"data": {...}, "meta": {...}}`).

    Raises:
        WebhookError: the body is not an object, has no `data` object, or no event type; or it
            holds text that is not valid Unicode (a lone surrogate from a JSON `\\ud800`
            escape) or is nested more than 24 levels deep.
    """
    if not isinstance(body, Mapping):
        raise WebhookError("the body must be a JSON object")
    problem = _unreadable(body)
    if problem:
        raise WebhookError(f"the body {problem}")
    data = body.get("data")
    if not isinstance(data, Mapping):
        if "event_type" in body:
            raise WebhookError(
                "this is a webhook API version 1 body: set the Call Control application to "
                "webhook API version 2"
            )
        raise WebhookError("the body has no data object")
    event_type = data.get("event_type")
    if not isinstance(event_type, str) or not event_type.strip():
        raise WebhookError("data.event_type is required")
    event_id = _text(data.get("id"))
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
        occurred_at=_text(data.get("occurred_at")),
        payload=payload,
        call_control_id=_text(payload.get("call_control_id")),
        state=decode_state(payload.get("client_state")),
        attempt=attempt or 0,
    )


def request_id(event_id: str) -> str:
    """The request id of an event: stable per `data.id`, so a redelivery is idempotent."""
    candidate = _REQUEST_ID_PREFIX + event_id
    if len(candidate) <= _MAX_ID:
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
    return handler(webhook, ccid, settings)


def _on_initiated(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    direction = _text(webhook.payload.get("direction"))
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
    status = _text(webhook.payload.get("status")).lower()
    raw_digits = _text(webhook.payload.get("digits"))
    if status in ("call_hangup", "cancelled", "cancelled_amd"):
        # call_hangup: call.hangup follows and ends the dialogue; cancelled: the command that
        # replaced the gather is what happens next; cancelled_amd: answering-machine detection
        # (never started by this gateway) took over.
        return Reaction(ccid, f"gather ended {status}: nothing to decide")
    if not status and not raw_digits:
        return Reaction(ccid, "gather ended without status or digits: nothing to decide")
    request = _base_request(webhook, ccid, state)
    digits, terminator = _split_terminator(raw_digits, state.terminator if state else "")
    if status == "invalid":
        request.no_match.input = _clip(raw_digits, _MAX_TEXT)
        request.no_match.reason = "invalid: keys not among the valid digits or wrong count"
    elif not _is_keys(digits):
        request.no_match.input = _clip(raw_digits, _MAX_TEXT)
        request.no_match.reason = "the gathered digits are not keys"
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
    digit = _text(webhook.payload.get("digit")).upper()
    kind = state.kind if state else ""
    if kind in _GATHERING:
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
    if len(digit) != 1 or digit not in _KEYS:
        return Reaction(ccid, f"dtmf {digit[:8]!r} is not a key: ignored")
    request = _base_request(webhook, ccid, state)
    request.digits_entered.digits = digit
    return _decide(request, webhook, ccid, state, "key pressed outside a gather", settings=settings)


def _on_started(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    return Reaction(ccid, f"{webhook.event_type}: acknowledged")


def _on_prompt_ended(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    status = _text(webhook.payload.get("status")).lower()
    kind = state.kind if state else ""
    if status == "call_hangup":
        return Reaction(ccid, "prompt ended by the hang-up: call.hangup follows")
    if state is not None and kind == KIND_THEN:
        return _follow_up(webhook, ccid, state)
    if kind in (*_GATHERING, KIND_RECORD, KIND_TRANSFER, KIND_LEG):
        return Reaction(ccid, f"prompt ended during {kind}: nothing to decide")
    request = _base_request(webhook, ccid, state)
    if status in ("failed", "file_not_found"):
        request.platform_error.code = status
        request.platform_error.message = _clip(
            _text(webhook.payload.get("failure_reason")) or f"{webhook.event_type} {status}",
            _MAX_REASON,
        )
    else:
        request.playback_finished.SetInParent()
        media = _text(webhook.payload.get("media_name")) or _text(webhook.payload.get("media_url"))
        request.playback_finished.media = _clip(media, _MAX_TEXT)
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
    finished.complete = _text(webhook.payload.get("status")).lower() == "valid"
    history = webhook.payload.get("message_history")
    if isinstance(history, list):
        for entry in history:
            if isinstance(entry, Mapping):
                message = finished.message_history.add()
                message.role = _clip(_text(entry.get("role")), _MAX_NUMBER)
                message.content = _clip(_text(entry.get("content")), _MAX_TEXT)
    return _decide(request, webhook, ccid, state, "AI gather ended", settings=settings)


def _on_progress(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    return Reaction(ccid, f"{webhook.event_type}: logged, call.ai_gather.ended decides")


def _on_recording_saved(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    request = _base_request(webhook, ccid, state)
    finished = request.recording_finished
    finished.SetInParent()
    payload = webhook.payload
    for urls_key in ("public_recording_urls", "recording_urls"):
        urls = payload.get(urls_key)
        if isinstance(urls, Mapping):
            uri = _text(urls.get("mp3")) or _text(urls.get("wav"))
            if uri:
                finished.recording_uri = _clip(uri, _MAX_TEXT)
                break
    started = _instant(_text(payload.get("recording_started_at")))
    ended = _instant(_text(payload.get("recording_ended_at")))
    if started is not None and ended is not None and ended >= started:
        finished.duration_ms = min(round((ended - started).total_seconds() * 1000), _INT32_MAX)
    return _decide(request, webhook, ccid, state, "recording saved", settings=settings)


def _on_recording_error(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    request = _base_request(webhook, ccid, state)
    request.platform_error.code = "recording_error"
    request.platform_error.message = _clip(
        _text(webhook.payload.get("reason")) or "recording failed", _MAX_REASON
    )
    return _decide(request, webhook, ccid, state, "recording failed", settings=settings)


def _on_bridged(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    return Reaction(ccid, "call bridged: the transfer outcome comes with call.answered/hangup")


def _on_hangup(webhook: Webhook, ccid: str, settings: Settings) -> Reaction:
    state = webhook.state
    payload = webhook.payload
    cause = _text(payload.get("hangup_cause"))
    sip_cause = _text(payload.get("sip_hangup_cause"))
    reason = _clip(f"{cause} (SIP {sip_cause})" if cause and sip_cause else cause, _MAX_REASON)
    if state is not None and state.kind == KIND_LEG:
        if not state.a_leg:
            return Reaction(ccid, "a transfer leg hung up, but its state names no call")
        # The target did not take the call (busy, no answer, rejected); after a bridge the
        # dialogue is over already and the server answers EndDialogue.
        request = _base_request(webhook, state.a_leg, state)
        request.transfer_finished.outcome = pb.TRANSFER_OUTCOME_FAILED
        request.transfer_finished.reason = reason or "transfer leg hung up"
        return _decide(
            request, webhook, state.a_leg, state, "transfer leg hung up", settings=settings
        )
    request = _base_request(webhook, ccid, state)
    request.call_ended.SetInParent()
    source = _text(payload.get("hangup_source")).lower()
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
        "call.conversation.ended": _on_progress,
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
        if not isinstance(to, str) or not _is_destination(to):
            return Reaction(ccid, "prompt ended; the transfer in the state has no valid 'to'")
        body["client_state"] = encode_state(
            ClientState(KIND_TRANSFER, ref=ref, outbound=state.outbound)
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
) -> Reaction:
    context = CommandContext(
        event_id=webhook.event_id,
        call_control_id=ccid,
        outbound=is_outbound(state),
        settings=settings,
    )
    return Reaction(ccid, note, request=request, context=context)


def _base_request(
    webhook: Webhook, call_id: str, state: ClientState | None
) -> pb.DecideNextActionRequest:
    """The request's id, call and time; the event is set by the caller."""
    request = pb.DecideNextActionRequest(request_id=request_id(webhook.event_id))
    call = request.call
    call.call_id = _clip(call_id, _MAX_ID)
    call.platform = pb.PLATFORM_TELNYX
    payload = webhook.payload
    if state is not None and state.kind == KIND_LEG:
        # An event of the transfer's new leg reported on the original call: its numbers are
        # the new leg's, not the call's.
        return _with_time(request, webhook)
    outbound = is_outbound(state)
    caller, callee = _text(payload.get("from")), _text(payload.get("to"))
    call.caller = _clip(caller, _MAX_NUMBER)
    call.callee = _clip(callee, _MAX_NUMBER)
    if outbound:
        call.direction = pb.CALL_DIRECTION_OUTBOUND
        selector = (state.selector if state else "") or caller
    else:
        if state is not None and state.kind == KIND_INBOUND:
            call.direction = pb.CALL_DIRECTION_INBOUND
        selector = callee
    call.flow_selector = _clip(selector, _MAX_ID)
    return _with_time(request, webhook)


def _with_time(request: pb.DecideNextActionRequest, webhook: Webhook) -> pb.DecideNextActionRequest:
    instant = _instant(webhook.occurred_at)
    if instant is not None:
        stamp = Timestamp()
        stamp.FromDatetime(instant)
        request.occurred_at.CopyFrom(stamp)
    return request


def is_outbound(state: ClientState | None) -> bool:
    """True when the state says the platform placed the call."""
    return state is not None and (state.outbound or state.kind == KIND_OUTBOUND)


# -- decisions out ----------------------------------------------------------------------------


def plan_commands(response: pb.DecideNextActionResponse, context: CommandContext) -> list[Command]:
    """The commands that carry out a decision, in order, each with command_id and client_state.

    Never raises for a response the contract allows, including an empty one: whatever Telnyx
    cannot do degrades to valid, safe commands (docs/gateways/telnyx.md). Today every decision
    becomes at most one command: what follows a prompt (hang-up, transfer, recording) waits in
    client_state for the prompt's end.
    """
    planned = _plan(response, context)
    return [
        (name, {**body, "command_id": command_id(context.event_id, index, name)})
        for index, (name, body) in enumerate(planned)
    ]


def _plan(response: pb.DecideNextActionResponse, context: CommandContext) -> list[Command]:
    action = response.WhichOneof("action")
    if action == "play_and_listen":
        return [_listen(response.play_and_listen, context)]
    if action == "play":
        return _play(response.play.prompts, context)
    if action == "play_and_hang_up":
        return _then(response.play_and_hang_up.prompts, "hangup", {}, context)
    if action == "play_and_transfer":
        return _transfer(response.play_and_transfer, context)
    if action == "record":
        return _record(response.record, context)
    if action == "ai_gather":
        return [_ai_gather(response.ai_gather, context)]
    if action == "stop_playing":
        # Stops what plays (speak or audio) and nothing else: "listen as before", so a running
        # gather goes on, and the state (what the leg is doing) stays as it was.
        return [("playback_stop", {"stop": "all"})]
    if action == "wait":
        return [_timer(response.wait.duration_ms, context)]
    if action in ("keep_playing", "end_dialogue"):
        return []
    if response.dialogue_over:
        return []
    # No action, or one newer than this gateway: ask again after a while rather than leave
    # the caller in silence with nothing that would ever report back.
    return [_timer(EMPTY_DECISION_WAIT_MS, context)]


@dataclass(frozen=True, slots=True)
class _Prompt:
    """Prompts reduced to what one Telnyx command can play: one TTS text, or one audio file."""

    text: str = ""
    language: str = ""
    voice: str = ""
    audio: pb.AudioFile | None = None


def _prompt(prompts: pb.Prompts, extra_text: str = "") -> _Prompt | None:
    """The one thing to play; None when there is nothing.

    Telnyx plays one payload per command, so TTS items are joined into one text (in order);
    when there is TTS, audio items in between are left out; audio alone plays its first file.
    """
    texts: list[str] = []
    language = voice = ""
    audio: pb.AudioFile | None = None
    for item in prompts.items:
        which = item.WhichOneof("content")
        if which == "tts" and item.tts.text.strip():
            texts.append(item.tts.text.strip())
            language = language or item.tts.language
            voice = voice or item.tts.voice
        elif which == "audio" and audio is None and item.audio.WhichOneof("source"):
            audio = item.audio
    if extra_text:
        texts.append(extra_text)
    if texts:
        joined = texts[0]
        for text in texts[1:]:
            # Chinese and Japanese sentences are not separated by spaces.
            joined += ("" if _CJK.match(joined[-1]) else " ") + text
        return _Prompt(text=_clip(joined, _MAX_PAYLOAD), language=language, voice=voice)
    if audio is not None:
        return _Prompt(audio=audio)
    return None


def _speech_fields(prompt: _Prompt, settings: Settings) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "payload": prompt.text,
        "voice": prompt.voice or _voice_for(prompt.language, settings),
    }
    language = speak_language(prompt.language)
    if language:
        fields["language"] = language
    return fields


def _audio_fields(audio: pb.AudioFile) -> dict[str, Any]:
    if audio.WhichOneof("source") == "media_name":
        return {"media_name": audio.media_name}
    return {"audio_url": audio.url}


def _play_command(prompt: _Prompt, settings: Settings) -> tuple[str, dict[str, Any]]:
    if prompt.audio is not None:
        fields = _audio_fields(prompt.audio)
        # playback_start assumes mp3 unless told (gather_using_audio has no such field).
        if prompt.audio.url.lower().split("?")[0].endswith(".wav"):
            fields["audio_type"] = "wav"
        return "playback_start", fields
    return "speak", _speech_fields(prompt, settings)


def _state(kind: str, context: CommandContext, **fields: Any) -> str:
    return encode_state(ClientState(kind, outbound=context.outbound, **fields))


def _listen(listen: pb.PlayAndListen, context: CommandContext) -> Command:
    settings = context.settings
    digits = listen.digits if listen.HasField("digits") else pb.DigitCollection()
    fields = _digit_fields(digits)
    timeout = (
        digits.first_digit_timeout_ms
        or (listen.speech.no_input_timeout_ms if listen.HasField("speech") else 0)
        or settings.listen_timeout_ms
    )
    timeout = _clamp(timeout, 1, _INT32_MAX)
    terminator = fields.get("terminating_digit", "")
    fields["client_state"] = _state(KIND_LISTEN, context, terminator=terminator)
    prompt = _prompt(listen.prompts)
    if prompt is None:
        fields["initial_timeout_millis"] = timeout
        if timeout >= _GATHER_DEFAULT_TOTAL_MS:
            fields["timeout_millis"] = min(timeout + _GATHER_DEFAULT_TOTAL_MS, _INT32_MAX)
        return "gather", fields
    # One try: the engine owns re-prompting (no-input and no-match escalation), so Telnyx must
    # report the first timeout or invalid entry instead of replaying the prompt itself.
    fields["maximum_tries"] = 1
    fields["timeout_millis"] = timeout
    if prompt.audio is not None:
        return "gather_using_audio", {**_audio_fields(prompt.audio), **fields}
    return "gather_using_speak", {**_speech_fields(prompt, settings), **fields}


def _digit_fields(digits: pb.DigitCollection) -> dict[str, Any]:
    minimum = _clamp(digits.min_digits, 1, _MAX_GATHER_DIGITS)
    maximum = _clamp(digits.max_digits or _MAX_GATHER_DIGITS, minimum, _MAX_GATHER_DIGITS)
    fields: dict[str, Any] = {"minimum_digits": minimum, "maximum_digits": maximum}
    terminator = digits.terminator.upper()
    if len(terminator) == 1 and terminator in _KEYS:
        fields["terminating_digit"] = terminator
    valid = "".join(dict.fromkeys(key for key in digits.valid_keys.upper() if key in _KEYS))
    if valid:
        if "terminating_digit" in fields and terminator not in valid:
            valid += terminator
        fields["valid_digits"] = valid
    if digits.inter_digit_timeout_ms > 0:
        fields["inter_digit_timeout_millis"] = digits.inter_digit_timeout_ms
    return fields


def _timer(duration_ms: int, context: CommandContext) -> Command:
    """A gather without prompt: Telnyx reports back after `duration_ms` (or the keys pressed)."""
    duration = _clamp(duration_ms or PLAY_NOTHING_WAIT_MS, 1, _INT32_MAX)
    fields: dict[str, Any] = {
        "minimum_digits": 1,
        "maximum_digits": _MAX_GATHER_DIGITS,
        "initial_timeout_millis": duration,
        "client_state": _state(KIND_WAIT, context),
    }
    if duration >= _GATHER_DEFAULT_TOTAL_MS:
        fields["timeout_millis"] = min(duration + _GATHER_DEFAULT_TOTAL_MS, _INT32_MAX)
    return "gather", fields


def _play(prompts: pb.Prompts, context: CommandContext) -> list[Command]:
    prompt = _prompt(prompts)
    if prompt is None:
        return [_timer(PLAY_NOTHING_WAIT_MS, context)]
    name, body = _play_command(prompt, context.settings)
    body["client_state"] = _state(KIND_PLAY, context)
    return [(name, body)]


def _then(
    prompts: pb.Prompts,
    next_command: str,
    next_body: dict[str, Any],
    context: CommandContext,
    *,
    extra_text: str = "",
    stop_key: str = "",
) -> list[Command]:
    """The prompt now, and `next_command` when it has ended (or at once when there is none).

    The caller must hear the goodbye or the "please hold" before the hang-up or transfer, and a
    command sent at once would cut it off; so the next command waits in client_state for the
    call.speak.ended / call.playback.ended of this prompt.
    """
    prompt = _prompt(prompts, extra_text)
    if prompt is None:
        return [(next_command, _now_body(next_command, next_body, context, stop_key))]
    name, body = _play_command(prompt, context.settings)
    body["client_state"] = _state(
        KIND_THEN,
        context,
        ref=context.event_id,
        next_command=next_command,
        next_body=next_body,
        stop_key=stop_key,
    )
    return [(name, body)]


def _now_body(
    name: str, body: dict[str, Any], context: CommandContext, stop_key: str
) -> dict[str, Any]:
    """A follow-up command's body when it goes out at once (no prompt before it)."""
    result = dict(body)
    if name == "transfer":
        result["client_state"] = _state(KIND_TRANSFER, context, ref=context.event_id)
        result["target_leg_client_state"] = _state(
            KIND_LEG, context, ref=context.event_id, a_leg=context.call_control_id
        )
    elif name == "record_start":
        result["client_state"] = _state(
            KIND_RECORD,
            context,
            ref=context.event_id,
            stop_key=stop_key,
            call_control_id=context.call_control_id,
        )
    return result


def _transfer(action: pb.PlayAndTransfer, context: CommandContext) -> list[Command]:
    transfer = action.transfer
    destination = transfer_destination(transfer, context.settings)
    if destination is None:
        # Nowhere Telnyx can dial: say why and hang up rather than leave the caller waiting.
        apology = _apology(action.prompts)
        return _then(action.prompts, "hangup", {}, context, extra_text=apology)
    body: dict[str, Any] = {"to": destination}
    if _E164.fullmatch(transfer.caller_id):
        body["from"] = transfer.caller_id
    if transfer.timeout_ms > 0:
        low, high = _TRANSFER_TIMEOUT_S
        body["timeout_secs"] = _clamp(math.ceil(transfer.timeout_ms / 1000), low, high)
    announcement = transfer.agent_announcement
    source = announcement.WhichOneof("source")
    if source == "media_name" and announcement.media_name:
        body["media_name"] = announcement.media_name
    elif source == "url" and announcement.url:
        body["audio_url"] = announcement.url
    return _then(action.prompts, "transfer", body, context)


def _record(record: pb.Record, context: CommandContext) -> list[Command]:
    body: dict[str, Any] = {"format": context.settings.record_format, "channels": "single"}
    if record.max_duration_ms > 0:
        body["max_length"] = _clamp(math.ceil(record.max_duration_ms / 1000), 1, _MAX_RECORD_S)
    if record.end_silence_ms > 0:
        body["timeout_secs"] = _clamp(math.ceil(record.end_silence_ms / 1000), 1, _MAX_RECORD_S)
    if record.beep:
        body["play_beep"] = True
    stop_key = record.stop_key.upper()
    if len(stop_key) != 1 or stop_key not in _KEYS:
        stop_key = ""
    return _then(record.prompts, "record_start", body, context, stop_key=stop_key)


def _ai_gather(gather: pb.AiGather, context: CommandContext) -> Command:
    schema: dict[str, Any] = json_format.MessageToDict(gather.parameters_schema)
    if not schema:
        # The command requires parameters; an empty schema asks for nothing in particular.
        schema = {"type": "object", "properties": {}}
    body: dict[str, Any] = {
        "parameters": schema,
        "voice": gather.voice or _voice_for(gather.language, context.settings),
        "client_state": _state(KIND_AI, context),
    }
    if gather.greeting.strip():
        body["greeting"] = _clip(gather.greeting.strip(), _MAX_PAYLOAD)
    language = ai_language(gather.language)
    if language:
        body["language"] = language
    if gather.user_response_timeout_ms > 0:
        body["user_response_timeout_ms"] = gather.user_response_timeout_ms
    return "gather_using_ai", body


def _apology(prompts: pb.Prompts) -> str:
    for item in prompts.items:
        if item.WhichOneof("content") == "tts" and item.tts.language:
            return (
                _TRANSFER_APOLOGY_ZH
                if item.tts.language.lower().startswith(("zh", "cmn"))
                else _TRANSFER_APOLOGY_EN
            )
    return _TRANSFER_APOLOGY_EN


def transfer_destination(transfer: pb.Transfer, settings: Settings) -> str | None:
    """Where Telnyx dials for a transfer target: an E.164 number or a SIP URI; None if nowhere.

    A configured entry wins (`KIND:VALUE`, then the bare VALUE); otherwise a phone number or a
    SIP URI is dialled as it is. Queues, agents and IVR flows need a configured entry.
    """
    which = transfer.WhichOneof("target")
    if which is None:
        return None
    if which == "skill_queue":
        queue = transfer.skill_queue.WhichOneof("queue")
        kind = "skill_queue_name" if queue == "name" else "skill_queue"
        value = transfer.skill_queue.name if queue == "name" else transfer.skill_queue.access_code
    else:
        kind, value = which, str(getattr(transfer, which))
    value = value.strip()
    if not value:
        return None
    for key in (f"{kind}:{value}", value):
        if key in settings.transfer_targets:
            return settings.transfer_targets[key]
    if kind in ("phone_number", "sip_uri") and _is_destination(value):
        return value
    return None


def failure_request(
    context: CommandContext, name: str, cid: str, code: str, detail: str
) -> tuple[pb.DecideNextActionRequest, CommandContext]:
    """The event to report when Telnyx refused a command for good, and the context of its answer.

    A refused `transfer` is a failed transfer (the flow's failure path runs); any other
    command is a `PlatformError`. Only for refusals other than "call already ended".
    """
    request = pb.DecideNextActionRequest(request_id=_clip(_FAILURE_ID_PREFIX + cid, _MAX_ID))
    request.call.call_id = _clip(context.call_control_id, _MAX_ID)
    request.call.platform = pb.PLATFORM_TELNYX
    reason = _clip(f"{name} refused: {code} {detail}".strip(), _MAX_REASON)
    if name == "transfer":
        request.transfer_finished.outcome = pb.TRANSFER_OUTCOME_FAILED
        request.transfer_finished.reason = reason
    else:
        request.platform_error.code = _clip(code, _MAX_NUMBER)
        request.platform_error.message = reason
    return request, replace(context, event_id=f"failed-{cid}")


# -- settings ---------------------------------------------------------------------------------


def parse_transfer_targets(text: str) -> dict[str, str]:
    """TELNYX_TRANSFER_TARGETS: a JSON object, target → E.164 number or SIP URI.

    JSON because destinations may hold what a simple list would split on: SIP URI parameters
    (`;transport=tls`), DTMF after a comma (`+18005550101,200`), `=` in parameters.

    Raises:
        ValueError: not a JSON object of strings, or a destination Telnyx cannot dial.
    """
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"TELNYX_TRANSFER_TARGETS is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("TELNYX_TRANSFER_TARGETS must be a JSON object: target → destination")
    targets: dict[str, str] = {}
    for key, value in data.items():
        if not isinstance(value, str) or not key.strip():
            raise ValueError(f"TELNYX_TRANSFER_TARGETS entry {key!r} must map to a string")
        if not _is_destination(value.strip()):
            raise ValueError(
                f"TELNYX_TRANSFER_TARGETS entry {key!r}: {value!r} is neither an E.164 number "
                "nor a SIP URI"
            )
        targets[key.strip()] = value.strip()
    return targets


def parse_voices(text: str) -> dict[str, str]:
    """TELNYX_VOICES: `LANGUAGE=VOICE,…` (e.g. `zh-CN=AWS.Polly.Zhiyu,en=Telnyx.KokoroTTS.af`).

    Raises:
        ValueError: an entry is not LANGUAGE=VOICE.
    """
    voices: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        language, separator, voice = entry.partition("=")
        if not separator or not language.strip() or not voice.strip():
            raise ValueError(f"TELNYX_VOICES entry {entry!r} is not LANGUAGE=VOICE")
        voices[language.strip().lower()] = voice.strip()
    return voices


def speak_language(tag: str) -> str:
    """The `language` of speak / gather_using_speak for a BCP-47 tag; "" when Telnyx has none."""
    tag = tag.strip().replace("_", "-")
    if not tag:
        return ""
    for candidate in _SPEAK_LANGUAGES:
        if candidate.lower() == tag.lower():
            return candidate
    return _SPEAK_DEFAULT_REGION.get(tag.split("-")[0].lower(), "")


def ai_language(tag: str) -> str:
    """The `language` of gather_using_ai (a bare language) for a BCP-47 tag; "" when unknown."""
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    primary = _AI_ALIASES.get(primary, primary)
    return primary if primary in _AI_LANGUAGES else ""


def _voice_for(language: str, settings: Settings) -> str:
    tag = language.strip().lower()
    return (
        settings.voices.get(tag)
        or settings.voices.get(tag.split("-")[0])
        or settings.default_voice
        or DEFAULT_VOICE
    )


# -- small helpers ------------------------------------------------------------------------------


def _is_destination(value: str) -> bool:
    return bool(_DIALLABLE.fullmatch(value) or _SIP_URI.fullmatch(value))


def _is_keys(digits: str) -> bool:
    return len(digits) <= _MAX_DIGITS and all(key in _KEYS for key in digits.upper())


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


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return ""


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


def struct_of(values: Mapping[str, Any]) -> Struct:
    """A Struct from JSON-like values (for tests and tools building AiGather schemas)."""
    struct = Struct()
    struct.update(dict(values))
    return struct


def _unreadable(value: Any) -> str:
    """Why a parsed value cannot be mapped, or "" (see `gateways.payloads.json_problem`)."""
    return json_problem(value, _MAX_DEPTH)
