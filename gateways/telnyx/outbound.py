"""Decisions out: a DecideNextActionResponse as the Call Control commands that carry it out.

`plan_commands` turns the server's decision into the commands to send, in order, each as
`(command_name, body)` with its `command_id` and `client_state` already set. Whatever Telnyx
cannot do degrades to valid, safe commands (docs/gateways/telnyx.md). Pure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.struct_pb2 import Struct

from dialogue.v1 import dialogue_pb2 as pb
from gateways.telnyx.client_state import (
    KIND_AI,
    KIND_ASSISTANT,
    KIND_LEG,
    KIND_LISTEN,
    KIND_PLAY,
    KIND_QUEUE,
    KIND_RECORD,
    KIND_THEN,
    KIND_TRANSFER,
    KIND_WAIT,
    MAX_GATHER_KEYS,
    ClientState,
    command_id,
    encode_state,
    fits,
)
from gateways.telnyx.settings import Settings, ai_language, speak_language, voice_for
from gateways.telnyx.values import E164, INT32_MAX, KEYS, Command, clamp, clip, is_destination

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
    "transcription_start",
    "transcription_stop",
    "gather_stop",
    "ai_assistant_start",
    "ai_assistant_stop",
    "ai_assistant_add_messages",
)
"""Every command `react` and `plan_commands` can produce."""

OPTIONAL_COMMANDS: Final = frozenset({"answer", "transcription_start", "transcription_stop"})
"""Commands whose refusal leaves the rest of the plan valid: not reported to the dialogue, and
the commands after them still go out (an `answer` refused because the call is answered already,
e.g. a late call.initiated; a refused transcription leaves the menu keys-only; a refused stop
before a restart in another language leaves the old one running)."""

RUNNING_GATHER: Final = "gather"
RUNNING_ASSISTANT: Final = "assistant"

QUEUE_WAIT_MS: Final = 500
"""QueryQueue (not a Telnyx capability) answers after this short timer: no figures, no silence."""


PLAY_NOTHING_WAIT_MS: Final = 1000
"""A Play with nothing playable waits this long instead, so the platform still reports back."""
EMPTY_DECISION_WAIT_MS: Final = 5000
"""A decision with no action the gateway knows: wait this long, then ask again."""

# Telnyx's limits (OpenAPI spec): TTS payloads, digits per gather, record and transfer times.
_MAX_PAYLOAD = 3000
_MAX_GATHER_DIGITS = MAX_GATHER_KEYS
_MAX_RECORD_S = 14400
_TRANSFER_TIMEOUT_S = (5, 600)
_GATHER_DEFAULT_TOTAL_MS = 60000
_MAX_HINTS = 100
_MAX_MESSAGE = 3000
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uff00-\uffef]")

# Said before hanging up when a transfer target has no Telnyx destination.
_TRANSFER_APOLOGY_ZH = "抱歉，暂时无法为您转接，请稍后再拨。再见。"
_TRANSFER_APOLOGY_EN = (
    "Sorry, we cannot transfer your call right now. Please call again later. Goodbye."
)


@dataclass(frozen=True, slots=True)
class CommandContext:
    """What `plan_commands` needs besides the decision.

    Attributes:
        event_id: The `data.id` of the webhook the decision answers: seeds every command_id.
        call_control_id: The leg the commands go to (carried in the state of a transfer's new
            leg and of a recording).
        outbound: The call was placed by the platform (kept in every client_state written).
        settings: Voices, transfer targets and defaults.
        running: What still runs on the leg while the decision is carried out: RUNNING_GATHER
            (the caller answered a key menu by voice: the gather is stopped first),
            RUNNING_ASSISTANT (an AI assistant has the call: it is stopped first, or told), or "".
        transcribing: transcription already runs on the leg (never started twice: 90054).
        transcription_language: the bare language it runs in ("" when unknown).
    """

    event_id: str
    call_control_id: str = ""
    outbound: bool = False
    settings: Settings = field(default_factory=Settings)
    running: str = ""
    transcribing: bool = False
    transcription_language: str = ""


def plan_commands(response: pb.DecideNextActionResponse, context: CommandContext) -> list[Command]:
    """The commands that carry out a decision, in order, each with command_id and client_state.

    Never raises for a response the contract allows, including an empty one: whatever Telnyx
    cannot do degrades to valid, safe commands (docs/gateways/telnyx.md). A decision is one
    command — what follows a prompt (hang-up, transfer, recording) waits in client_state for
    the prompt's end — after, where needed, `gather_stop` (the caller answered by voice),
    `ai_assistant_stop` (the flow takes the call back) or `transcription_start` (the first
    spoken menu).
    """
    planned = _plan(response, context)
    return [
        (name, {**body, "command_id": command_id(context.event_id, index, name)})
        for index, (name, body) in enumerate(planned)
    ]


def _plan(response: pb.DecideNextActionResponse, context: CommandContext) -> list[Command]:
    action = response.WhichOneof("action")
    if action == "hand_to_assistant":
        return [_assistant(response.hand_to_assistant, context)]
    if context.running == RUNNING_ASSISTANT and action not in (
        "keep_playing",
        "end_dialogue",
        None,
    ):
        # The assistant still has the call (this decision answers something else, e.g. a
        # refusal): take the call back before the flow speaks again.
        return [("ai_assistant_stop", {}), *_plan_action(response, action, context)]
    if context.running == RUNNING_GATHER and action not in ("keep_playing", "stop_playing", None):
        # A key gather still runs (the caller answered by voice): stop it, or its timeout
        # would report a second answer; its call.gather.ended says "cancelled" and is ignored.
        return [("gather_stop", {}), *_plan_action(response, action, context)]
    return _plan_action(response, action, context)


def _plan_action(
    response: pb.DecideNextActionResponse, action: str | None, context: CommandContext
) -> list[Command]:
    if action == "play_and_listen":
        return _listen(response.play_and_listen, context)
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
    if action == "query_queue":
        # Telnyx has no queue figures to give (no CAPABILITY_QUEUE_STATUS): a short timer whose
        # end is reported as QueueStatusReported with every figure unknown.
        return [_timer(QUEUE_WAIT_MS, context, kind=KIND_QUEUE)]
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
        return _Prompt(text=clip(joined, _MAX_PAYLOAD), language=language, voice=voice)
    if audio is not None:
        return _Prompt(audio=audio)
    return None


def _speech_fields(prompt: _Prompt, settings: Settings) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "payload": prompt.text,
        "voice": prompt.voice or voice_for(prompt.language, settings),
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
    fields.setdefault("transcribing", context.transcribing)
    fields.setdefault("transcription_language", context.transcription_language)
    return encode_state(ClientState(kind, outbound=context.outbound, **fields))


def _listen(listen: pb.PlayAndListen, context: CommandContext) -> list[Command]:
    """The gather, after `transcription_start` when the menu invites speech (once per call,
    and again, after `transcription_stop`, when the call's language changed)."""
    if not listen.HasField("speech") or not context.settings.speech:
        return [_gather(listen, context)]
    language = _transcription_language(listen.speech, context.settings)
    if context.transcribing:
        # Unknown on either side (another engine, a state written before languages were
        # kept): the running transcription stays.
        if (
            not language
            or language == context.transcription_language
            or (not context.transcription_language)
        ):
            return [_gather(listen, context)]
        restarted = replace(context, transcription_language=language)
        return [
            ("transcription_stop", {}),
            _transcription_start(listen.speech, context.settings),
            _gather(listen, restarted),
        ]
    started = replace(context, transcribing=True, transcription_language=language)
    return [_transcription_start(listen.speech, context.settings), _gather(listen, started)]


def _transcription_language(speech: pb.SpeechRecognition, settings: Settings) -> str:
    """The language transcription is asked for ("" when the engine takes none)."""
    return ai_language(speech.language) if settings.transcription_engine == "Google" else ""


def _transcription_start(speech: pb.SpeechRecognition, settings: Settings) -> Command:
    """Speech recognition beside the key gather: final results only, the caller's track.

    It runs from the first spoken menu to the end of the call (Telnyx bills it by the minute;
    TELNYX_SPEECH=false turns it off); `call.transcription` while a gather listens is the answer.
    """
    config: dict[str, Any] = {"transcription_engine": settings.transcription_engine}
    if settings.transcription_engine == "Google":
        config["interim_results"] = False
        language = _transcription_language(speech, settings)
        if language:
            config["language"] = language
        hints = [hint.strip() for hint in speech.hints if hint.strip()][:_MAX_HINTS]
        if hints:
            config["hints"] = hints
    body: dict[str, Any] = {
        "transcription_engine": settings.transcription_engine,
        "transcription_engine_config": config,
        "transcription_tracks": "inbound",
    }
    return "transcription_start", body


def _gather(listen: pb.PlayAndListen, context: CommandContext) -> Command:
    settings = context.settings
    digits = listen.digits if listen.HasField("digits") else pb.DigitCollection()
    fields = _digit_fields(digits)
    timeout = (
        digits.first_digit_timeout_ms
        or (listen.speech.no_input_timeout_ms if listen.HasField("speech") else 0)
        or settings.listen_timeout_ms
    )
    timeout = clamp(timeout, 1, INT32_MAX)
    terminator = fields.get("terminating_digit", "")
    maximum = 0
    if terminator and fields["maximum_digits"] < _MAX_GATHER_DIGITS:
        # Telnyx honours terminating_digit only while fewer than maximum_digits were gathered:
        # room for one more key means the terminator is collected here and never reaches the
        # next menu; a key beyond the menu's maximum is reported as no match.
        maximum = fields["maximum_digits"]
        fields["maximum_digits"] = maximum + 1
    fields["client_state"] = _state(KIND_LISTEN, context, terminator=terminator, maximum=maximum)
    prompt = _prompt(listen.prompts)
    if prompt is None:
        fields["initial_timeout_millis"] = timeout
        if timeout >= _GATHER_DEFAULT_TOTAL_MS:
            fields["timeout_millis"] = min(timeout + _GATHER_DEFAULT_TOTAL_MS, INT32_MAX)
        return "gather", fields
    # One try: the engine owns re-prompting (no-input and no-match escalation), so Telnyx must
    # report the first timeout or invalid entry instead of replaying the prompt itself.
    fields["maximum_tries"] = 1
    fields["timeout_millis"] = timeout
    if prompt.audio is not None:
        return "gather_using_audio", {**_audio_fields(prompt.audio), **fields}
    return "gather_using_speak", {**_speech_fields(prompt, settings), **fields}


def _digit_fields(digits: pb.DigitCollection) -> dict[str, Any]:
    minimum = clamp(digits.min_digits, 1, _MAX_GATHER_DIGITS)
    maximum = clamp(digits.max_digits or _MAX_GATHER_DIGITS, minimum, _MAX_GATHER_DIGITS)
    fields: dict[str, Any] = {"minimum_digits": minimum, "maximum_digits": maximum}
    terminator = digits.terminator.upper()
    if len(terminator) == 1 and terminator in KEYS:
        fields["terminating_digit"] = terminator
    valid = "".join(dict.fromkeys(key for key in digits.valid_keys.upper() if key in KEYS))
    if valid:
        if "terminating_digit" in fields and terminator not in valid:
            valid += terminator
        fields["valid_digits"] = valid
    if digits.inter_digit_timeout_ms > 0:
        fields["inter_digit_timeout_millis"] = digits.inter_digit_timeout_ms
    return fields


def _timer(duration_ms: int, context: CommandContext, *, kind: str = KIND_WAIT) -> Command:
    """A gather without prompt: Telnyx reports back after `duration_ms` (or the keys pressed)."""
    duration = clamp(duration_ms or PLAY_NOTHING_WAIT_MS, 1, INT32_MAX)
    fields: dict[str, Any] = {
        "minimum_digits": 1,
        "maximum_digits": _MAX_GATHER_DIGITS,
        "initial_timeout_millis": duration,
        "client_state": _state(kind, context),
    }
    if duration >= _GATHER_DEFAULT_TOTAL_MS:
        fields["timeout_millis"] = min(duration + _GATHER_DEFAULT_TOTAL_MS, INT32_MAX)
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
    for carried in (next_body, _without_announcement(next_body)):
        state = _state(
            KIND_THEN,
            context,
            ref=context.event_id,
            next_command=next_command,
            next_body=carried,
            stop_key=stop_key,
        )
        if fits(state):
            body["client_state"] = state
            return [(name, body)]
    # Defensive (destinations are at most ~530 characters, so no command the contract can
    # express gets here): a state still too long to be read back would leave the call waiting
    # for an end of prompt it could never act on, so the command goes now, after the prompt.
    return [(name, body), (next_command, _now_body(next_command, next_body, context, stop_key))]


def _without_announcement(body: dict[str, Any]) -> dict[str, Any]:
    """A transfer without its agent announcement (a URL can be long), to keep the state small."""
    return {key: value for key, value in body.items() if key not in ("audio_url", "media_name")}


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
    if E164.fullmatch(transfer.caller_id):
        body["from"] = transfer.caller_id
    if transfer.timeout_ms > 0:
        low, high = _TRANSFER_TIMEOUT_S
        body["timeout_secs"] = clamp(math.ceil(transfer.timeout_ms / 1000), low, high)
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
        body["max_length"] = clamp(math.ceil(record.max_duration_ms / 1000), 1, _MAX_RECORD_S)
    if record.end_silence_ms > 0:
        body["timeout_secs"] = clamp(math.ceil(record.end_silence_ms / 1000), 1, _MAX_RECORD_S)
    if record.beep:
        body["play_beep"] = True
    stop_key = record.stop_key.upper()
    if len(stop_key) != 1 or stop_key not in KEYS:
        stop_key = ""
    return _then(record.prompts, "record_start", body, context, stop_key=stop_key)


def _ai_gather(gather: pb.AiGather, context: CommandContext) -> Command:
    schema: dict[str, Any] = json_format.MessageToDict(gather.parameters_schema)
    if not schema:
        # The command requires parameters; an empty schema asks for nothing in particular.
        schema = {"type": "object", "properties": {}}
    body: dict[str, Any] = {
        "parameters": schema,
        "voice": gather.voice or voice_for(gather.language, context.settings),
        "client_state": _state(KIND_AI, context),
    }
    if gather.greeting.strip():
        body["greeting"] = clip(gather.greeting.strip(), _MAX_PAYLOAD)
    language = ai_language(gather.language)
    if language:
        body["language"] = language
    if gather.user_response_timeout_ms > 0:
        body["user_response_timeout_ms"] = gather.user_response_timeout_ms
    return "gather_using_ai", body


def _assistant(hand: pb.HandToAssistant, context: CommandContext) -> Command:
    """`ai_assistant_start`, or, when one already has the call, `ai_assistant_add_messages`
    (Telnyx refuses a second start with 90061). The state marks the hand-off, so the
    `call.conversation.ended` that follows gives the call back to the flow."""
    state = _state(KIND_ASSISTANT, context, ref=context.event_id)
    notes = [text for text in (hand.instructions.strip(), _context_note(hand)) if text]
    if context.running == RUNNING_ASSISTANT:
        messages = [{"role": "system", "content": clip(note, _MAX_MESSAGE)} for note in notes]
        if not messages:
            messages = [{"role": "system", "content": "The conversation goes on."}]
        return "ai_assistant_add_messages", {"messages": messages, "client_state": state}
    assistant: dict[str, Any] = {
        "id": hand.assistant_id.strip() or context.settings.assistant_id,
    }
    if hand.instructions.strip():
        assistant["instructions"] = clip(hand.instructions.strip(), _MAX_MESSAGE)
    variables = {
        key: clip(value, _MAX_MESSAGE) for key, value in sorted(hand.context.items()) if key
    }
    if variables:
        assistant["dynamic_variables"] = variables
    body: dict[str, Any] = {"assistant": assistant, "client_state": state}
    if hand.greeting.strip():
        body["greeting"] = clip(hand.greeting.strip(), _MAX_PAYLOAD)
    if hand.language.strip():
        language = ai_language(hand.language)
        if language:
            body["transcription"] = {"language": language}
    return "ai_assistant_start", body


def _context_note(hand: pb.HandToAssistant) -> str:
    facts = "; ".join(f"{key}: {value}" for key, value in sorted(hand.context.items()) if key)
    return f"Facts from the call so far: {facts}" if facts else ""


def give_up(context: CommandContext) -> Command:
    """The hang-up after Telnyx refused the dialogue's answers to its refusals."""
    return "hangup", {"command_id": command_id(context.event_id, 0, "hangup")}


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
    if kind in ("phone_number", "sip_uri") and is_destination(value):
        return value
    return None


def struct_of(values: Mapping[str, Any]) -> Struct:
    """A Struct from JSON-like values (for tests and tools building AiGather schemas)."""
    struct = Struct()
    struct.update(dict(values))
    return struct
