"""dialogue.v1 decisions → answers of Aliyun intelligent voice interaction (智能语音交互), pure.

The platform executes the one `action` of each answer. `render_answer` renders a decision for
the callback it answers; `render_failure` the platform's failure envelope. What the gateway
decided earlier travels in `dynamic_id` (pending.py). The mapping, field by field, and every
degradation are documented in `docs/gateways/aliyun-ivr.md`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from dialogue.v1 import dialogue_pb2 as pb
from gateways.aliyun_ivr.inbound import Callback, transfer_outcome
from gateways.aliyun_ivr.pending import (
    ASSISTANT,
    HANG_UP,
    LISTENING,
    MENU_DEFERRED,
    PARALLEL,
    QUEUE_QUERY,
    TRANSFER,
    TRANSFER_E164,
    Pending,
    join_dynamic_id,
)

MUTE_TIME_MIN_MS: Final = 1000
MUTE_TIME_MAX_MS: Final = 20000
DTMF_TIMEOUT_MIN_S: Final = 3
DTMF_TIMEOUT_MAX_S: Final = 60
DTMF_MAX_NUMBERS_MIN: Final = 1
DTMF_MAX_NUMBERS_MAX: Final = 50

_DIALLABLE = re.compile(r"\+?\d{3,32}")
_DIAL_NOISE = re.compile(r"[\s().-]")

# Characters the platform forbids in callback data, and the full-width look-alikes sent instead.
_FORBIDDEN: Final = MappingProxyType(
    {
        ord("@"): "＠",
        ord("="): "＝",
        ord(":"): "：",
        ord('"'): "”",
        ord("$"): "＄",
        ord("{"): "｛",
        ord("}"): "｝",
        ord("^"): "＾",
        ord("*"): "＊",
        ord("¥"): "￥",
    }
)
# Most text has none of them, and str.translate with a mapping looks up every character: a
# search for any of them is ~10× cheaper than translating.
_ANY_FORBIDDEN: Final = re.compile("[" + re.escape("".join(map(chr, _FORBIDDEN))) + "]")
# File codes are a comma-separated list: a comma inside one code would split it.
_FORBIDDEN_IN_CODE: Final = MappingProxyType({**_FORBIDDEN, ord(","): "，"})

# Said before hanging up when a transfer has no Aliyun rendering; English when the prompts are.
_TRANSFER_APOLOGY_ZH = "抱歉，暂时无法为您转接，请稍后再拨。再见。"
_TRANSFER_APOLOGY_EN = (
    "Sorry, we cannot transfer your call right now. Please call again later. Goodbye."
)

NATIONAL: Final = "national"
E164: Final = "e164"
NUMBER_FORMATS: Final = (NATIONAL, E164)
MENU_AS_DTMF: Final = "dtmf"
MENU_AS_PLAY: Final = "play"
MIXED_MENU_ACTIONS: Final = (MENU_AS_DTMF, MENU_AS_PLAY)

# China's country code; national numbers: mobiles as they are, landlines behind the trunk `0`.
_CHINA = "+86"
_CHINESE_MOBILE = re.compile(r"1[3-9]\d{9}")
_CHINESE_NON_GEOGRAPHIC = re.compile(r"(?:400|800)\d{7}|\d{3,6}")
_SPACES = re.compile(r"\s+")

# Server answers that leave a decided transfer standing: nothing new was decided.
_NOT_A_DECISION: Final = frozenset({"keep_playing", "stop_playing", "wait", "end_dialogue", None})


@dataclass(frozen=True, slots=True)
class AnswerSettings:
    """Gateway configuration that shapes answers (declared in routes.py, documented in
    docs/gateways/aliyun-ivr.md).

    Attributes:
        session_timeout_s: `callin` answer: longest call, in seconds.
        record_flag: `callin` answer: whether the platform records the call.
        asr_model_id: `callin` answer: the ASR model; omitted when empty.
        asr_base_id: `callin` answer: the ASR customisation (hot words) id; omitted when empty.
        cc_name: The Aliyun call center that takes parallel transfers; empty renders parallel
            transfers as blind ones.
        transfer_numbers: Transfer targets Aliyun cannot dial → a number it can. Keys are
            `KIND:VALUE` (kind one of phone_number, skill_queue, skill_queue_name, agent_id,
            ivr_flow, sip_uri) or the bare VALUE.
        default_mute_time_ms: How long an answer that listens for the caller waits for speech
            when the response does not say.
        follow_up_mute_time_ms: `mute_time` of answers that only wait for the platform to call
            back (after an announcement, before a transfer, after callin): short, so the
            platform asks for the next step at once.
        number_format: `national` (+86 numbers as dialled in China) or `e164`.
        mixed_menu: What a menu that takes keys and speech is sent as: `dtmf` (collects keys)
            or `play` (listens for speech only).
    """

    session_timeout_s: int = 3600
    record_flag: bool = True
    asr_model_id: str = ""
    asr_base_id: str = ""
    cc_name: str = ""
    transfer_numbers: Mapping[str, str] = field(default_factory=dict)
    default_mute_time_ms: int = 10000
    follow_up_mute_time_ms: int = 1000
    number_format: str = NATIONAL
    mixed_menu: str = MENU_AS_DTMF


def render_answer(
    callback: Callback, response: pb.DecideNextActionResponse, settings: AnswerSettings
) -> dict[str, Any]:
    """Renders the response as the answer to the callback (a JSON-ready dict).

    Never raises for a response the contract allows, including an empty one: whatever has no
    Aliyun verb degrades to a valid, safe answer (docs/gateways/aliyun-ivr.md). Two rules hold
    for every answer: it is one the document allows (`action_code` always present, values in
    range), and it leaves the platform something to do: once a hang-up or a transfer was
    decided (the gateway's note in `dynamic_id`, see `pending.py`), every later callback of the
    call gets it again, whatever its content_type.
    """
    pending = callback.pending
    action = response.WhichOneof("action")
    if callback.content_type == "callin":
        data, note = _render_callin(callback, response, settings)
    elif pending.kind == HANG_UP:
        data, note = _hang_up(callback, {"action_code": ""})
    elif pending.decided and action in _NOT_A_DECISION:
        data, note = _reissue(callback, pending, settings)
    else:
        data, note = _render_turn(callback, response, settings, pending)
    dynamic_id = join_dynamic_id(_sanitise(response.call_data.continuation_token), note)
    if dynamic_id:
        data["dynamic_id"] = dynamic_id
    return {"result": "success", "msg": "成功", "code": 200, "data": data}


def render_failure(reason: str) -> dict[str, Any]:
    """The platform's failure answer, e.g. for a CallbackError."""
    return {"result": "fail", "msg": reason, "data": {}}


# -- rendering helpers --------------------------------------------------------------------------

_Rendered = tuple[dict[str, Any], Pending]


def _render_callin(
    callback: Callback, response: pb.DecideNextActionResponse, settings: AnswerSettings
) -> _Rendered:
    """A callin answer is only `answer` or `hangup`: it plays, but cannot collect keys."""
    action = response.WhichOneof("action")
    if action in ("play_and_hang_up", "end_dialogue"):
        prompts = response.play_and_hang_up.prompts
        return _hang_up(callback, _prompt_fields(prompts))
    if action == "play_and_transfer" and not _transfer_plan(response.play_and_transfer, settings):
        return _render_transfer(callback, response.play_and_transfer, settings)
    data: dict[str, Any] = {"call_id": callback.call_id, "action": "answer"}
    data["session_timeout"] = max(settings.session_timeout_s, 1)
    data["record_flag"] = settings.record_flag
    if settings.asr_model_id:
        data["asr_model_id"] = settings.asr_model_id
    if settings.asr_base_id:
        data["asr_base_id"] = settings.asr_base_id
    follow_up = settings.follow_up_mute_time_ms
    if action == "play_and_listen" and _as_dtmf(response.play_and_listen, settings):
        # Keys cannot be collected on callin: play nothing, be called back at once (a `mute`
        # the gateway turns into the dialogue's start), and ask the menu in that answer, where
        # the keys count. The caller is not charged a no-input for the platform's limit.
        data["action_code"] = ""
        data["mute_time"] = _mute_time(follow_up)
        return data, Pending(MENU_DEFERRED)
    if action == "play_and_transfer":
        # No transfer on callin: the announcement plays, and the very next callback, whatever
        # it is, gets the transfer.
        transfer = response.play_and_transfer
        data.update(_prompt_fields(transfer.prompts))
        data["mute_time"] = _mute_time(follow_up)
        return data, _transfer_plan(transfer, settings)
    prompts, listen_ms, note = _listening(response, settings)
    data.update(_prompt_fields(prompts))
    data["mute_time"] = _mute_time(listen_ms)
    return data, note


def _render_turn(
    callback: Callback,
    response: pb.DecideNextActionResponse,
    settings: AnswerSettings,
    pending: Pending,
) -> _Rendered:
    action = response.WhichOneof("action")
    data: dict[str, Any] = {"call_id": callback.call_id}
    if action == "play_and_listen" and _as_dtmf(response.play_and_listen, settings):
        listen = response.play_and_listen
        digits = listen.digits
        timeout_s = _clamp(
            math.ceil(digits.first_digit_timeout_ms / 1000), DTMF_TIMEOUT_MIN_S, DTMF_TIMEOUT_MAX_S
        )
        data["action"] = "dtmf"
        data.update(_prompt_fields(listen.prompts))
        data["dtmf_nonin_overtime"] = timeout_s
        data["dtmf_max_numbers"] = _clamp(
            digits.max_digits, DTMF_MAX_NUMBERS_MIN, DTMF_MAX_NUMBERS_MAX
        )
        data["dtmf_end_character"] = digits.terminator if digits.terminator in ("*", "#") else ""
        return data, Pending(LISTENING, listen_s=timeout_s)
    if action == "play_and_hang_up":
        return _hang_up(callback, _prompt_fields(response.play_and_hang_up.prompts))
    if action == "play_and_transfer":
        transfer = response.play_and_transfer
        if pending.decided and _transfer_plan(transfer, settings) == pending:
            # The same transfer asked again (its announcement was already played): at once.
            transfer = pb.PlayAndTransfer(transfer=transfer.transfer)
        return _render_transfer(callback, transfer, settings)
    if action in ("keep_playing", "stop_playing"):
        # The answer in progress goes on listening as it did: its window is in the note.
        window = pending if pending.kind == LISTENING else Pending()
        listen_ms = window.listen_s * 1000 if window.listen_s else settings.follow_up_mute_time_ms
        data["action"] = "continue" if action == "keep_playing" else "break"
        data["action_code"] = ""
        data["mute_time"] = _mute_time(listen_ms)
        return data, window
    if action == "end_dialogue":
        if (
            callback.content_type == "parallel_transfer"
            and transfer_outcome(callback.content)[0] == pb.TRANSFER_OUTCOME_SUCCEEDED
        ):
            data.update(action="parallel_bridge", action_code="")
            return data, Pending(PARALLEL)
        # The dialogue is over and the platform still asks: end the call rather than idle.
        return _hang_up(callback, {"action_code": ""})
    if action in ("query_queue", "hand_to_assistant"):
        # Neither exists here (no capability is announced): be called back at once, and the
        # next callback becomes the empty queue report / the assistant's end (inbound.py).
        data.update(action="donothing", action_code="")
        data["mute_time"] = _mute_time(settings.follow_up_mute_time_ms)
        return data, Pending(QUEUE_QUERY if action == "query_queue" else ASSISTANT)
    prompts, listen_ms, note = _listening(response, settings)
    fields = _prompt_fields(prompts)
    data["action"] = "play" if fields["action_code"] else "donothing"
    data.update(fields)
    data["mute_time"] = _mute_time(listen_ms)
    return data, note


def _listening(
    response: pb.DecideNextActionResponse, settings: AnswerSettings
) -> tuple[pb.Prompts, int, Pending]:
    """What a `play`/`donothing`/`answer` plays, how long it waits, and the note to leave.

    Answers that listen for the caller wait the listening time; answers that only wait for the
    platform to call back (an announcement, a queue, an assistant) the short follow-up.
    """
    action = response.WhichOneof("action")
    default = settings.default_mute_time_ms
    follow_up = settings.follow_up_mute_time_ms
    if action == "play_and_listen":
        listen = response.play_and_listen
        timeout = (
            listen.speech.no_input_timeout_ms or listen.digits.first_digit_timeout_ms or default
        )
        return listen.prompts, timeout, _window(timeout)
    if action == "play":
        return response.play.prompts, follow_up, Pending()
    if action == "record":
        record = response.record
        timeout = record.end_silence_ms or default
        return record.prompts, timeout, _window(timeout)
    if action == "ai_gather":
        gather = response.ai_gather
        greeting = pb.TextToSpeech(text=gather.greeting)
        timeout = gather.user_response_timeout_ms or default
        return pb.Prompts(items=[pb.Prompt(tts=greeting)]), timeout, _window(timeout)
    if action == "wait":
        return pb.Prompts(), response.wait.duration_ms, Pending()
    if action in ("query_queue", "hand_to_assistant"):
        return (
            pb.Prompts(),
            follow_up,
            Pending(QUEUE_QUERY if action == "query_queue" else ASSISTANT),
        )
    # keep_playing, stop_playing on callin, or no action: listen, and ask again on silence.
    return pb.Prompts(), default, _window(default)


def _window(milliseconds: int) -> Pending:
    return Pending(LISTENING, listen_s=_mute_time(milliseconds) // 1000)


def _as_dtmf(listen: pb.PlayAndListen, settings: AnswerSettings) -> bool:
    """Whether a listening answer is sent as `dtmf` (keys) rather than `play` (speech).

    The document defines `dtmf` as receiving keys, and `play` answers are followed by speech
    (`normal`) or silence (`mute`). A menu that takes both goes as `mixed_menu` says.
    """
    if not listen.HasField("digits"):
        return False
    return not listen.HasField("speech") or settings.mixed_menu == MENU_AS_DTMF


def _hang_up(callback: Callback, fields: dict[str, Any]) -> _Rendered:
    data: dict[str, Any] = {"call_id": callback.call_id, "action": "hangup"}
    data.update(fields)
    return data, Pending(HANG_UP)


def _reissue(callback: Callback, pending: Pending, settings: AnswerSettings) -> _Rendered:
    """The transfer decided earlier, again (without its announcement: it was played)."""
    data: dict[str, Any] = {"call_id": callback.call_id}
    if pending.kind != PARALLEL:
        data.update(action="transfer", action_code="", number=pending.number)
        return data, pending
    if (
        callback.content_type == "parallel_transfer"
        and transfer_outcome(callback.content)[0] == pb.TRANSFER_OUTCOME_SUCCEEDED
    ):
        data.update(action="parallel_bridge", action_code="")
        return data, pending
    data.update(action="parallel_transfer", action_code="", is_monitor=pending.monitored)
    data["cc_name"] = settings.cc_name
    return data, pending


def _transfer_plan(action: pb.PlayAndTransfer, settings: AnswerSettings) -> Pending:
    """How a transfer is rendered here, as the note later callbacks re-issue it from; NOTHING
    when Aliyun cannot do it (no number to dial)."""
    transfer = action.transfer
    if transfer.mode == pb.TRANSFER_MODE_PARALLEL and settings.cc_name:
        return Pending(PARALLEL, monitored=transfer.monitored)
    number = _transfer_number(transfer, settings.transfer_numbers)
    if not number:
        return Pending()
    dialled = _dial_form(number, settings.number_format)
    return Pending(TRANSFER_E164 if dialled.startswith("+") else TRANSFER, number=dialled)


def _render_transfer(
    callback: Callback, action: pb.PlayAndTransfer, settings: AnswerSettings
) -> _Rendered:
    plan = _transfer_plan(action, settings)
    data: dict[str, Any] = {"call_id": callback.call_id}
    if plan.kind == PARALLEL:
        # The call center routes a parallel transfer itself: the target is not sent.
        data["action"] = "parallel_transfer"
        data.update(_prompt_fields(action.prompts))
        playfile = _media_code(action.transfer.agent_announcement)
        if playfile:
            data["transfer_playfile"] = playfile
        data["is_monitor"] = plan.monitored
        data["cc_name"] = settings.cc_name
        return data, plan
    if plan.decided:
        data["action"] = "transfer"
        data.update(_prompt_fields(action.prompts))
        data["number"] = plan.number
        return data, plan
    # Nothing Aliyun can dial: say so and hang up rather than leave the caller in silence.
    apology = _transfer_apology(action.prompts)
    return _hang_up(callback, _prompt_fields(action.prompts, trailing_text=apology))


def _dial_form(number: str, number_format: str) -> str:
    """+86 numbers in national form unless E.164 is asked for; other numbers as they are.

    National: a mobile (`1[3-9]` + 9 digits), a 400/800 number or a short service number is
    dialled as it is; any other +86 number is a landline behind the trunk prefix `0`
    (`+861012345678` → `01012345678`).
    """
    if number_format == E164 or not number.startswith(_CHINA):
        return number
    national = number[len(_CHINA) :]
    if _CHINESE_MOBILE.fullmatch(national) or _CHINESE_NON_GEOGRAPHIC.fullmatch(national):
        return national
    return "0" + national


def _transfer_number(transfer: pb.Transfer, numbers: Mapping[str, str]) -> str:
    kind = transfer.WhichOneof("target")
    if kind is None:
        return ""
    if kind == "skill_queue":
        queue = transfer.skill_queue.WhichOneof("queue")
        if queue is None:
            return ""
        value = getattr(transfer.skill_queue, queue)
        kind_name = "skill_queue" if queue == "access_code" else "skill_queue_name"
    else:
        value = getattr(transfer, kind)
        kind_name = kind
    if not value:
        return ""
    candidates = [numbers.get(f"{kind_name}:{value}"), numbers.get(value)]
    if kind == "phone_number":
        candidates.append(value)
    for candidate in candidates:
        if candidate is None:
            continue
        number = _DIAL_NOISE.sub("", str(candidate))
        if _DIALLABLE.fullmatch(number):
            return number
    return ""


def _transfer_apology(prompts: pb.Prompts) -> str:
    for item in prompts.items:
        if item.WhichOneof("content") == "tts" and item.tts.language:
            english = item.tts.language.lower().startswith("en")
            return _TRANSFER_APOLOGY_EN if english else _TRANSFER_APOLOGY_ZH
    return _TRANSFER_APOLOGY_ZH


def _prompt_fields(prompts: pb.Prompts, *, trailing_text: str = "") -> dict[str, Any]:
    """action_code (file codes and `$ttsN$` in play order), its params and barge-in.

    Args:
        prompts: What to play.
        trailing_text: Text spoken after the prompts (an apology, an AI gather greeting).
    """
    codes: list[str] = []
    texts: dict[str, str] = {}

    def say(text: str) -> None:
        clean = _sanitise(text)
        if clean.strip():
            name = f"tts{len(texts) + 1}"
            texts[name] = clean
            codes.append(f"${name}$")

    for item in prompts.items:
        kind = item.WhichOneof("content")
        if kind == "audio":
            code = _media_code(item.audio)
            if code:
                codes.append(code)
        elif kind == "tts":
            say(item.tts.text)
    if trailing_text:
        say(trailing_text)
    if not codes:
        # The document marks action_code required for every action: "" plays nothing.
        return {"action_code": ""}
    fields: dict[str, Any] = {"action_code": ",".join(codes)}
    if texts:
        # A JSON string inside the JSON answer: serialise the inner object first.
        fields["action_code_param"] = json.dumps(texts, ensure_ascii=False, separators=(",", ":"))
    mode = prompts.barge_in.mode
    interruptible = mode not in (pb.BARGE_IN_MODE_NONE, pb.BARGE_IN_MODE_KEYS)
    fields["action_break"] = interruptible
    fields["action_code_break"] = interruptible
    if interruptible and prompts.barge_in.min_speech_ms > 0:
        fields["action_code_time_break"] = prompts.barge_in.min_speech_ms
    return fields


def _media_code(audio: pb.AudioFile) -> str:
    """The platform's file code: the media name, or a URL's file name (Aliyun plays uploads only)."""
    source = audio.WhichOneof("source")
    if source == "media_name":
        name = audio.media_name.strip()
    elif source == "url":
        name = unquote(urlsplit(audio.url.strip()).path.rsplit("/", 1)[-1]).strip()
    else:
        return ""
    # A file code is one word: spaces (`bye now.wav`) would not name an uploaded file.
    return _SPACES.sub("_", name).translate(_FORBIDDEN_IN_CODE)


def _sanitise(text: str) -> str:
    """Replaces the characters the platform forbids in callback data with full-width look-alikes."""
    return text.translate(_FORBIDDEN) if _ANY_FORBIDDEN.search(text) else text


def _mute_time(milliseconds: int) -> int:
    return _clamp(milliseconds, MUTE_TIME_MIN_MS, MUTE_TIME_MAX_MS)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
