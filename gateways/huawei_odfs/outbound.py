"""Huawei ODFS answers out: a DecideNextActionResponse rendered as one outaction.

Pure: no web framework, network, clock or mutable state. `render_answer` never raises for a
response the contract allows; whatever has no Huawei outaction degrades to a valid, safe
answer (docs/gateways/huawei-odfs.md, Degradations).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote

from dialogue.v1 import dialogue_pb2 as pb
from gateways.huawei_odfs.protocol import (
    HANG_UP_CALL_DATA,
    INACTION_TRANSFERRED,
    MAX_KEYS_MAX,
    MAX_KEYS_MIN,
    OUTACTION_HANG_UP,
    OUTACTION_INTERACT,
    OUTACTION_QUERY,
    OUTACTION_TRANSFER,
    PENDING_ASSISTANT,
    PENDING_FINAL,
    PENDING_QUERY,
    PENDING_RECORD,
    PROMPT_FILE,
    PROMPT_PATH,
    PROMPT_RECORD,
    PROMPT_TTS,
    QUERY_AGENT,
    QUERY_CURRENT_QUEUE,
    QUERY_SKILL_QUEUE,
    RET_BAD_REQUEST,
    RET_OK,
    TIMEOUT_MAX_S,
    TIMEOUT_MIN_S,
    TRANS_AGENT,
    TRANS_IVR,
    TRANS_NUMBER,
    TRANS_QUEUE_ACCESS_CODE,
    TRANS_QUEUE_NAME,
    CallFacts,
    OdfsRequest,
    Pending,
    clamp,
    next_index,
    record_path,
    seconds,
)
from gateways.huawei_odfs.settings import Settings, transfer_succeeded

_DIALLABLE = re.compile(r"\+?\d{3,32}")


_DIAL_NOISE = re.compile(r"[\s().-]")


# Where a joined TTS text needs no space: after Chinese closing punctuation only.
_CLOSING_PUNCTUATION: Final = frozenset("。！？；，、：…」』”）》")


# Said before hanging up when a transfer has no Huawei rendering; English when the prompts are.
_TRANSFER_APOLOGY_ZH = "抱歉，暂时无法为您转接，请稍后再拨。再见。"


_TRANSFER_APOLOGY_EN = (
    "Sorry, we cannot transfer your call right now. Please call again later. Goodbye."
)


def render_answer(
    request: OdfsRequest,
    response: pb.DecideNextActionResponse,
    settings: Settings,
    facts: CallFacts | None = None,
    *,
    fallback: bool = False,
) -> dict[str, Any]:
    """Renders the decision as the answer to the request (a JSON-ready dict).

    Never raises for a response the contract allows, including an empty one: whatever has no
    Huawei outaction degrades to a valid, safe answer that plays something real
    (docs/gateways/huawei-odfs.md).

    Args:
        request: The request being answered.
        response: The server's decision (or the decider's fallback).
        settings: The gateway settings.
        facts: Times, caller and access code known to the HTTP layer, and the promise of an
            earlier answer this request gets (`facts.pending`, final or record kind): then
            that promise is rendered, whatever `response` says.
        fallback: True when `response` is the fallback: answering a `playover` it then
            transfers or hangs up at once instead of playing its prompt again, so a server that
            stays down cannot loop the caller through the same apology.
    """
    facts = facts or CallFacts()
    # The vendor's end of a call: a hang-up, or a successful transfer report, is answered 10
    # whatever was decided (the dialogue is over for the IVR either way).
    if request.is_hangup or transfer_succeeded(request, settings):
        return _envelope(
            request, OUTACTION_HANG_UP, _hang_up(request, response, facts, "0"), settings
        )
    pending = facts.pending
    if pending is not None and pending.kind in (PENDING_FINAL, PENDING_RECORD):
        # What the caller was told must happen: the transfer or hang-up after its announcement,
        # the recording after its instruction, whatever the IVR reported in between.
        return _render(
            request, pending.response, settings, facts, direct=True, failed=pending.failed
        )
    direct = fallback and request.input_word == "playover"
    return _render(
        request, response, settings, facts, direct=direct, failed=_transfer_failed(request)
    )


def promise_of(
    request: OdfsRequest,
    request_id: str,
    response: pb.DecideNextActionResponse,
    answer: dict[str, Any],
) -> Pending | None:
    """What the answer to this request promised for the next one, or None.

    Args:
        request: The request answered.
        request_id: Its id (`inbound.request_id`).
        response: The decision rendered.
        answer: The answer `render_answer` gave.
    """
    outaction = int(answer["outaction"])
    action = response.WhichOneof("action")
    if outaction == OUTACTION_QUERY:
        return Pending(PENDING_QUERY, request_id)
    if action == "hand_to_assistant":
        return Pending(PENDING_ASSISTANT, request_id)
    if outaction != OUTACTION_INTERACT:
        return None
    if action == "play_and_transfer":
        return Pending(PENDING_FINAL, request_id, response, failed=_transfer_failed(request))
    if action == "play_and_hang_up":
        failed = (
            _transfer_failed(request)
            or response.play_and_hang_up.reason == pb.HANG_UP_REASON_FAILED
        )
        return Pending(PENDING_FINAL, request_id, response, failed=failed)
    if action == "record" and answer["outparams"].get("prompt_type") != PROMPT_RECORD:
        return Pending(PENDING_RECORD, request_id, response)
    return None


def _render(
    request: OdfsRequest,
    response: pb.DecideNextActionResponse,
    settings: Settings,
    facts: CallFacts,
    *,
    direct: bool,
    failed: bool,
) -> dict[str, Any]:
    """One decision as one answer; `direct` skips the announcement of a final action."""
    action = response.WhichOneof("action")
    if action == "play_and_listen":
        listen = response.play_and_listen
        outparams = _interaction(
            request,
            settings,
            listen.prompts,
            digits=listen.digits if listen.HasField("digits") else None,
            speech=listen.speech if listen.HasField("speech") else None,
        )
        return _envelope(request, OUTACTION_INTERACT, outparams, settings)
    if action == "play":
        return _play_only(request, settings, response.play.prompts)
    if action == "play_and_hang_up":
        hang_up = response.play_and_hang_up
        if _playable(hang_up.prompts) and not direct:
            # outaction=10 plays nothing: the prompts play first, and the request that follows
            # gets the hang-up (the HTTP layer keeps the promise, see promise_of).
            return _play_only(request, settings, hang_up.prompts)
        reason = "1" if failed or hang_up.reason == pb.HANG_UP_REASON_FAILED else "0"
        return _envelope(
            request, OUTACTION_HANG_UP, _hang_up(request, response, facts, reason), settings
        )
    if action == "play_and_transfer":
        return _render_transfer(request, response, settings, facts, direct=direct)
    if action == "record":
        record = response.record
        if _playable(record.prompts) and not direct:
            # prompt_type 4 plays no prompt of ours: the instruction plays first, and the
            # request that follows gets the recording (promise_of).
            return _play_only(request, settings, record.prompts)
        return _envelope(request, OUTACTION_INTERACT, _record(request, settings, record), settings)
    if action == "wait":
        outparams = _filler_listen(request, settings, seconds(response.wait.duration_ms))
        return _envelope(request, OUTACTION_INTERACT, outparams, settings)
    if action == "ai_gather":
        return _envelope(
            request, OUTACTION_INTERACT, _ai_gather(request, settings, response.ai_gather), settings
        )
    if action == "query_queue":
        return _envelope(
            request, OUTACTION_QUERY, _query(request, settings, response.query_queue), settings
        )
    if action == "hand_to_assistant":
        # No voice assistant on the IVR: its greeting (or the filler) plays, and the request
        # that follows reports the assistant's end (inbound.to_request with the promise).
        assistant = response.hand_to_assistant
        prompts = pb.Prompts(barge_in=pb.BargeIn(mode=pb.BARGE_IN_MODE_NONE))
        if assistant.greeting.strip():
            prompts.items.add().tts.CopyFrom(
                pb.TextToSpeech(text=assistant.greeting, language=assistant.language)
            )
        return _play_only(request, settings, prompts)
    if action == "end_dialogue":
        reason = "1" if failed else "0"
        return _envelope(
            request, OUTACTION_HANG_UP, _hang_up(request, response, facts, reason), settings
        )
    # KeepPlaying, StopPlaying, no action (or one newer than this gateway): the IVR only calls
    # once an interaction is over, so nothing is playing any more: the filler plays and the
    # caller may speak or press a key.
    outparams = _filler_listen(request, settings, settings.default_timeout_s)
    return _envelope(request, OUTACTION_INTERACT, outparams, settings)


def _transfer_failed(request: OdfsRequest) -> bool:
    """A transfer report whose transfer did not succeed (any trans_result but success)."""
    return request.inaction == INACTION_TRANSFERRED and not request.is_hangup


def _query(request: OdfsRequest, settings: Settings, query: pb.QueryQueue) -> dict[str, str]:
    """outaction=12 parameters: which queue, by the prompt_type the document lists."""
    outparams = {
        "call_id": request.userid,
        "prompt_type": QUERY_CURRENT_QUEUE,
        "inter_idx": next_index(request),
        "moduleName": settings.query_module_name,
    }
    target = query.WhichOneof("target")
    # A blank id cannot be asked for: the queue the call waits in is asked instead.
    if target == "skill_queue" and query.skill_queue.strip():
        outparams["prompt_type"] = QUERY_SKILL_QUEUE
        outparams[settings.query_skill_field] = query.skill_queue.strip()
    elif target == "agent_id" and query.agent_id.strip():
        outparams["prompt_type"] = QUERY_AGENT
        outparams[settings.query_agent_field] = query.agent_id.strip()
    return outparams


def render_error(reason: str, userid: str, settings: Settings) -> dict[str, Any]:
    """The answer to a request the gateway cannot serve (HTTP 400), e.g. for a RequestError."""
    return {"ret": _code(RET_BAD_REQUEST, settings), "userid": userid, "errorMsg": reason}


def render_auth_failure(code: int, reason: str, userid: str, settings: Settings) -> dict[str, Any]:
    """The answer to a request whose token failed: `ret` 900001 or 900002 (HTTP 401)."""
    return {"ret": _code(code, settings), "userid": userid, "errorMsg": reason}


def model_type(
    *,
    plays: bool,
    digits: pb.DigitCollection | None,
    speech: pb.SpeechRecognition | None,
    barge_in: pb.BargeIn,
) -> str:
    """The 7-digit `model_type` of an interaction.

    d1 play (1 when something plays); d2 speech recognition and d3 keys, each 0 (not accepted),
    1 (accepted, interrupts the prompt) or 2 (accepted, the prompt plays to the end); d4–d5 the
    most keys (01–99; 00 without keys); d6 `*` as the cancel key; d7 `#` as the confirm key.
    Every head this returns with `plays` is one of MODEL_TYPE_HEADS.
    """
    mode = barge_in.mode
    speech_interrupts = mode not in (pb.BARGE_IN_MODE_NONE, pb.BARGE_IN_MODE_KEYS)
    keys_interrupt = mode not in (pb.BARGE_IN_MODE_NONE, pb.BARGE_IN_MODE_SPEECH)
    d1 = "1" if plays else "0"
    d2 = "0" if speech is None else ("1" if speech_interrupts else "2")
    if digits is None:
        return f"{d1}{d2}00000"
    d3 = "1" if keys_interrupt else "2"
    if d2 not in ("0", d3):
        # The document's heads never mix an interrupting and a non-interrupting input (no 112,
        # no 121): the prompt plays to its end (122), and both are still accepted after it.
        d2 = d3 = "2"
    most = clamp(digits.max_digits or digits.min_digits or 1, MAX_KEYS_MIN, MAX_KEYS_MAX)
    cancel = "1" if digits.cancel_key == "*" else "0"
    confirm = "1" if digits.terminator == "#" else "0"
    return f"{d1}{d2}{d3}{most:02d}{cancel}{confirm}"


def _envelope(
    request: OdfsRequest, outaction: int, outparams: dict[str, str], settings: Settings
) -> dict[str, Any]:
    return {
        "ret": _code(RET_OK, settings),
        "userid": request.userid,
        "outaction": _code(outaction, settings),
        "outparams": outparams,
    }


def _code(value: int, settings: Settings) -> int | str:
    return str(value) if settings.string_codes else value


@dataclass(frozen=True, slots=True)
class _Prompt:
    """The one prompt an interaction plays."""

    prompt_type: str = PROMPT_TTS
    wav: str = ""
    text: str = ""
    tts: pb.TextToSpeech | None = None

    @property
    def plays(self) -> bool:
        return bool(self.wav or self.text)


def _choose_prompt(prompts: pb.Prompts, trailing_text: str = "") -> _Prompt:
    """One interaction plays one prompt: TTS texts joined, else the first audio file.

    Mixed lists play their TTS texts only (the audio files are dropped); several audio files
    without TTS play the first one only (docs: "Several prompts").
    """
    texts: list[str] = []
    first_tts: pb.TextToSpeech | None = None
    first_audio: pb.AudioFile | None = None
    for item in prompts.items:
        kind = item.WhichOneof("content")
        if kind == "tts" and item.tts.text.strip():
            texts.append(item.tts.text.strip())
            first_tts = first_tts or item.tts
        elif kind == "audio" and first_audio is None and _audio_location(item.audio):
            first_audio = item.audio
    if trailing_text.strip():
        texts.append(trailing_text.strip())
    if texts:
        return _Prompt(PROMPT_TTS, "", _join(texts), first_tts)
    if first_audio is not None:
        return _file_prompt(
            _audio_location(first_audio), url=first_audio.WhichOneof("source") == "url"
        )
    return _Prompt()


def _file_prompt(location: str, *, url: bool = False) -> _Prompt:
    """A voice file: prompt_type 1 by name (the IVR adds the path), 0 by full path or URL."""
    full_path = url or bool(re.search(r"[/\\:]", location))
    return _Prompt(PROMPT_PATH if full_path else PROMPT_FILE, location)


def _audio_location(audio: pb.AudioFile) -> str:
    source = audio.WhichOneof("source")
    if source == "media_name":
        return audio.media_name.strip()
    if source == "url":
        return audio.url.strip()
    return ""


def _join(texts: Sequence[str]) -> str:
    """Joins TTS texts: directly after Chinese closing punctuation, else with a space.

    ASCII punctuation takes the space too: English sentences ("recorded. For") need it.
    """
    joined = texts[0]
    for text in texts[1:]:
        joined += text if joined[-1] in _CLOSING_PUNCTUATION else " " + text
    return joined


def _playable(prompts: pb.Prompts) -> bool:
    return _choose_prompt(prompts).plays


def _language(prompt: _Prompt, speech: pb.SpeechRecognition | None, fallback: str = "") -> str:
    """`language`: 1 for English, 0 (Chinese) otherwise. One field serves TTS and ASR, so a
    step that listens takes the recognition language (the call's: what the caller will
    answer in, even after a Chinese menu's "For English, press 9"); else the TTS's."""
    tag = (speech.language if speech is not None else "") or (
        prompt.tts.language if prompt.tts is not None else ""
    )
    tag = tag or fallback
    return "1" if tag.strip().lower().startswith("en") else "0"


def _interaction(
    request: OdfsRequest,
    settings: Settings,
    prompts: pb.Prompts,
    *,
    digits: pb.DigitCollection | None,
    speech: pb.SpeechRecognition | None,
    timeout_s: int | None = None,
    trailing_text: str = "",
    language_tag: str = "",
) -> dict[str, str]:
    """outaction=9 parameters of a prompt and a listen (or of a play only, without either)."""
    prompt = _choose_prompt(prompts, trailing_text)
    if not prompt.plays:
        # The document has no "play nothing" interaction (every model_type head plays, and
        # `timeout` counts from the end of the playing): the configured filler plays instead.
        prompt = _filler(settings)
    listening = digits is not None or speech is not None
    if timeout_s is None:
        waits = [
            digits.first_digit_timeout_ms if digits is not None else 0,
            speech.no_input_timeout_ms if speech is not None else 0,
        ]
        longest = max(waits)
        timeout_s = seconds(longest) if longest > 0 else settings.default_timeout_s
    outparams = {
        "call_id": request.userid,
        "prompt_type": prompt.prompt_type,
        "prompt_wav": prompt.wav,
        "prompt_text": prompt.text,
        "language": _language(prompt, speech, language_tag),
        "inter_idx": next_index(request),
        "model_type": model_type(
            plays=prompt.plays, digits=digits, speech=speech, barge_in=prompts.barge_in
        ),
        # A play-only interaction waits for nothing after the prompt.
        "timeout": str(clamp(timeout_s, TIMEOUT_MIN_S, TIMEOUT_MAX_S)) if listening else "0",
        "tone": "",
        "grammar": settings.grammar if speech is not None else "",
    }
    if prompt.prompt_type == PROMPT_TTS and prompt.text:
        outparams.update(_tts_parameters(prompt.tts, settings))
    if speech is not None:
        outparams.update(_asr_parameters(speech, settings))
    return outparams


def _play_only(request: OdfsRequest, settings: Settings, prompts: pb.Prompts) -> dict[str, Any]:
    outparams = _interaction(request, settings, prompts, digits=None, speech=None)
    return _envelope(request, OUTACTION_INTERACT, outparams, settings)


def _filler(settings: Settings) -> _Prompt:
    """The configured filler (a short silence or hold tone): by name, or by full path."""
    return _file_prompt(settings.filler_prompt.strip())


def _filler_listen(request: OdfsRequest, settings: Settings, timeout_s: int) -> dict[str, str]:
    """An interaction that plays the filler and listens for speech or one key for timeout_s."""
    return _interaction(
        request,
        settings,
        pb.Prompts(barge_in=pb.BargeIn(mode=pb.BARGE_IN_MODE_ANY)),
        digits=pb.DigitCollection(min_digits=1, max_digits=1),
        speech=pb.SpeechRecognition(),
        timeout_s=timeout_s,
    )


def _ai_gather(request: OdfsRequest, settings: Settings, gather: pb.AiGather) -> dict[str, str]:
    """No voice assistant on the IVR: the greeting is spoken and speech is recognised."""
    timeout_ms = gather.user_response_timeout_ms
    return _interaction(
        request,
        settings,
        pb.Prompts(barge_in=pb.BargeIn(mode=pb.BARGE_IN_MODE_SPEECH)),
        digits=None,
        speech=pb.SpeechRecognition(language=gather.language, no_input_timeout_ms=timeout_ms),
        timeout_s=seconds(timeout_ms) if timeout_ms > 0 else settings.default_timeout_s,
        trailing_text=gather.greeting,
        language_tag=gather.language,
    )


def _record(request: OdfsRequest, settings: Settings, record: pb.Record) -> dict[str, str]:
    """prompt_type 4: the IVR records to `prompt_wav` (its instruction played before, apart)."""
    index = next_index(request)
    longest_s = (
        seconds(record.max_duration_ms)
        if record.max_duration_ms > 0
        else settings.default_timeout_s
    )
    return {
        "call_id": request.userid,
        "prompt_type": PROMPT_RECORD,
        "prompt_wav": record_path(request.userid, index, settings.record_dir),
        # Always present in the document's table, but with content only for types 2, 3, 6, 7:
        # the instruction was played by its own interaction, so nothing is said twice.
        "prompt_text": "",
        "language": _language(_choose_prompt(record.prompts), None),
        "inter_idx": index,
        "timeout": str(clamp(longest_s, TIMEOUT_MIN_S, TIMEOUT_MAX_S)),
        "tone": "true" if record.beep else "false",
        "grammar": "",
    }


def _tts_parameters(tts: pb.TextToSpeech | None, settings: Settings) -> dict[str, str]:
    fields: dict[str, str] = {}
    if settings.tts_group_id:
        fields["ttsGroupId"] = settings.tts_group_id
    if tts is not None:
        voice = tts.voice.strip().lower()
        words = set(re.split(r"[^a-z0-9]+", voice))
        if voice in ("0", "1"):
            fields["ttsSoundEffect"] = voice
        elif words & {"female", "woman", "f"}:
            fields["ttsSoundEffect"] = "1"
        elif words & {"male", "man", "m"}:
            fields["ttsSoundEffect"] = "0"
        if tts.speed > 0 and math.isfinite(tts.speed):
            # Three documented speeds: 0 low, 1 medium, 8 high.
            fields["ttsSoundSpeed"] = "0" if tts.speed < 0.85 else "8" if tts.speed > 1.15 else "1"
    if settings.tts_mrcp_vendor:
        fields["ttsMRCPVendor"] = settings.tts_mrcp_vendor[:40]
    return fields


def _asr_parameters(speech: pb.SpeechRecognition, settings: Settings) -> dict[str, str]:
    fields: dict[str, str] = {}
    if settings.asr_mrcp_id:
        fields["asrMRCPId"] = settings.asr_mrcp_id
    if settings.asr_timeout_unit == "none":
        return fields
    for name, milliseconds in (
        ("asrNoInputTimeout", speech.no_input_timeout_ms),
        ("asrRecognitionTimeout", speech.max_duration_ms),
        ("asrSpeechCompleteTimeout", speech.end_silence_timeout_ms),
    ):
        if milliseconds > 0:
            value = milliseconds if settings.asr_timeout_unit == "ms" else seconds(milliseconds)
            fields[name] = str(value)
    return fields


def _hang_up(
    request: OdfsRequest, response: pb.DecideNextActionResponse, facts: CallFacts, reason: str
) -> dict[str, str]:
    """outaction=10 parameters."""
    # Both times come from the gateway's clock (the HTTP layer's facts): the IVR's own times
    # are opaque text in its own clock, and mixing the two makes no interval.
    return {
        "call_id": request.userid,
        "call_sor_id": _caller(request, response, facts),
        "call_dst_id": (
            request.inparams.get("call_dst_id", "").strip()
            or response.call_data.parameters.get("call_dst_id", "").strip()
            or facts.call_dst_id
        ),
        "start_time": facts.start_time or facts.end_time,
        "end_time": facts.end_time or facts.start_time,
        "release_reason": reason,
    } | {
        # Table 6's voice-navigation fields: the call's data as the flow left it (the IVR's own
        # entrance and region come back this way, and a flow may set its exit).
        name: value
        for name in HANG_UP_CALL_DATA
        if (value := response.call_data.parameters.get(name, "").strip())
    }


def _caller(request: OdfsRequest, response: pb.DecideNextActionResponse, facts: CallFacts) -> str:
    return (
        request.inparams.get("call_sor_id", "").strip()
        or response.call_data.parameters.get("call_sor_id", "").strip()
        or facts.call_sor_id
    )


def _render_transfer(
    request: OdfsRequest,
    response: pb.DecideNextActionResponse,
    settings: Settings,
    facts: CallFacts,
    *,
    direct: bool,
) -> dict[str, Any]:
    action = response.play_and_transfer
    transfer = action.transfer
    target = _transfer_target(transfer)
    if _playable(action.prompts) and not direct:
        # outaction=11 plays nothing: the prompts play first; the playover that follows makes
        # the server ask for the transfer again, without prompts, and that is answered 11.
        apology = "" if target is not None else _transfer_apology(action.prompts)
        outparams = _interaction(
            request, settings, action.prompts, digits=None, speech=None, trailing_text=apology
        )
        return _envelope(request, OUTACTION_INTERACT, outparams, settings)
    if target is None:
        # Nowhere Huawei can transfer to, and nothing left to say: end the call as failed.
        return _envelope(
            request, OUTACTION_HANG_UP, _hang_up(request, response, facts, "1"), settings
        )
    trans_type, route_value = target
    outparams = {
        "call_id": request.userid,
        "call_sor_id": _caller(request, response, facts),
        "trans_type": trans_type,
        "route_value": route_value,
        "inter_idx": next_index(request),
    }
    trans_data = _trans_data(transfer, response.call_data.passthrough, settings)
    if trans_data:
        outparams["trans_data"] = trans_data
    if transfer.caller_id.strip():
        outparams["calling_num"] = transfer.caller_id.strip()
    if settings.record_transfers and trans_type == TRANS_NUMBER:
        outparams["record_path"] = record_path(
            request.userid, outparams["inter_idx"] + "_transfer", settings.record_dir
        )
    return _envelope(request, OUTACTION_TRANSFER, outparams, settings)


def _transfer_target(transfer: pb.Transfer) -> tuple[str, str] | None:
    """(trans_type, route_value) of a transfer, or None when Huawei cannot transfer there."""
    kind = transfer.WhichOneof("target")
    if kind == "skill_queue":
        queue = transfer.skill_queue.WhichOneof("queue")
        if queue == "access_code" and transfer.skill_queue.access_code.strip():
            return TRANS_QUEUE_ACCESS_CODE, transfer.skill_queue.access_code.strip()
        if queue == "name" and transfer.skill_queue.name.strip():
            return TRANS_QUEUE_NAME, transfer.skill_queue.name.strip()
        return None
    if kind == "ivr_flow" and transfer.ivr_flow.strip():
        return TRANS_IVR, transfer.ivr_flow.strip()
    if kind == "agent_id" and transfer.agent_id.strip():
        return TRANS_AGENT, transfer.agent_id.strip()
    if kind == "phone_number":
        number = _DIAL_NOISE.sub("", transfer.phone_number)
        return (TRANS_NUMBER, number) if _DIALLABLE.fullmatch(number) else None
    if kind == "sip_uri":
        # No SIP transfer on the IVR: a URI whose user part is a number is dialled as a number.
        scheme, _, rest = transfer.sip_uri.strip().partition(":")
        if scheme.lower() not in ("sip", "sips", "tel"):
            return None
        user = _DIAL_NOISE.sub("", unquote(rest.split("@", 1)[0].split(";", 1)[0]))
        return (TRANS_NUMBER, user) if _DIALLABLE.fullmatch(user) else None
    return None


def _trans_data(transfer: pb.Transfer, passthrough: str, settings: Settings) -> str:
    """`trans_data`: what the flow collected, with the IVR's own transin_data kept inside.

    auto: the associated data as compact JSON, the passthrough under `transin_data` (unless the
    flow set that key itself); the passthrough alone when the flow collected nothing.
    """
    data = dict(transfer.associated_data)
    if settings.trans_data == "passthrough":
        return passthrough
    if settings.trans_data == "auto" and data and passthrough:
        data.setdefault("transin_data", passthrough)
    if settings.trans_data == "auto" and not data:
        return passthrough
    return (
        json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")) if data else ""
    )


def _transfer_apology(prompts: pb.Prompts) -> str:
    for item in prompts.items:
        if item.WhichOneof("content") == "tts" and item.tts.language:
            english = item.tts.language.lower().startswith("en")
            return _TRANSFER_APOLOGY_EN if english else _TRANSFER_APOLOGY_ZH
    return _TRANSFER_APOLOGY_ZH
