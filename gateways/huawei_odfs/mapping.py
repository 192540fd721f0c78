"""Huawei CEC ODFS dialog interfaces ⇄ dialogue.v1, as pure functions.

The IVR POSTs `{userid, inaction, seat, inparams, extparams}` to the ODFS after every step of a
call (8: the call starts, 9: an interaction ended, 11: a transfer ended) and executes the one
`outaction` of the answer `{ret, userid, outaction, outparams}` (9: interact, 10: hang up,
11: transfer). This gateway stands in for the ODFS.

Everything here is pure: no web framework, no network, no clock, no mutable module state. The
HTTP layer parses the body (`parse_request`), checks the token, resolves a Redis transcript
reference (`speech_reference`) itself, then calls `to_request` → (gRPC) → `render_answer`; a
`RequestError` is answered with `render_error`, a token failure with `render_auth_failure`.
Times the answer needs (outaction=10 `start_time`/`end_time`) come in as `CallFacts`. The
mapping, field by field, and every degradation are documented in `docs/gateways/huawei-odfs.md`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

from dialogue.v1 import dialogue_pb2 as pb
from gateways.payloads import json_problem as _payload_problem

INACTION_START: Final = 8
INACTION_INTERACTED: Final = 9
INACTION_TRANSFERRED: Final = 11
INACTIONS: Final = (INACTION_START, INACTION_INTERACTED, INACTION_TRANSFERRED)
"""Every `inaction` this gateway serves (7 and 13 exist only with packet-capture recording)."""

OUTACTION_INTERACT: Final = 9
OUTACTION_HANG_UP: Final = 10
OUTACTION_TRANSFER: Final = 11
OUTACTIONS: Final = (OUTACTION_INTERACT, OUTACTION_HANG_UP, OUTACTION_TRANSFER)
"""Every `outaction` this gateway answers (12, query, has no contract action)."""

RET_OK: Final = 0
RET_BAD_REQUEST: Final = -1
RET_NO_TOKEN: Final = 900001
"""No token information exists or the token has expired (Huawei's common error code)."""
RET_BAD_TOKEN: Final = 900002
"""The token check failed (Huawei's common error code)."""

FLOW_RESULT_TYPES: Final = ("1", "2", "3", "4", "5", "-1")
"""1 speech/text, 2 keys, 3 no input (play only), 4 recording ended, 5 virtual human, -1 others."""
INPUT_WORDS: Final = ("playover", "timeout", "nomatch", "sys_err", "hangup", "recordend")
"""The `input` values that are signals rather than caller input (matched case-insensitively)."""

PROMPT_PATH: Final = "0"
PROMPT_FILE: Final = "1"
PROMPT_TTS: Final = "2"
PROMPT_RECORD: Final = "4"
PLAY_ONLY: Final = "1000000"
"""`model_type` of an interaction that only plays: no recognition, no keys."""

TRANS_QUEUE_ACCESS_CODE: Final = "1"
TRANS_IVR: Final = "2"
TRANS_QUEUE_NAME: Final = "3"
TRANS_AGENT: Final = "4"
TRANS_NUMBER: Final = "5"

TRANS_DATA_MODES: Final = ("auto", "passthrough", "json")
ASR_TIMEOUT_UNITS: Final = ("s", "ms")

TIMEOUT_MIN_S: Final = 1
TIMEOUT_MAX_S: Final = 600
MAX_KEYS_MIN: Final = 1
MAX_KEYS_MAX: Final = 99

# inparams that describe the call rather than the event: handed to the flow as call parameters
# ({params.NAME}) whenever the IVR sends them; call_sor_id comes back from the server this way
# when a later request (which lacks it) needs it for an outaction=11.
CALL_PARAMETERS: Final = (
    "call_sor_id",
    "call_dst_id",
    "real_callee",
    "cti_callid",
    "suilu_region_id",
    "entrance_id",
    "mediaType",
    "call_media_type",
    "channelType",
)

# Limits of the dialogue.v1 contract (server/validation.py): longer values are clipped so that
# a well-formed request never becomes an INVALID_ARGUMENT one.
_MAX_ID = 128
_MAX_NUMBER = 64
_MAX_TEXT = 4096
_MAX_PARAMETER_VALUE = 1024
_MAX_DIGITS = 64
_MAX_REASON = 1024

# Deeper than any request is; shallow enough that the recursive code after the check
# (json.dumps of nested values) stays far from Python's recursion limit.
_MAX_DEPTH = 32

_REQUEST_ID_PREFIX = "huawei-odfs-"
_AUTH_KEYS: Final = ("auth_token", "authToken")

# Bounded so that int() never meets Python's digit limit on hostile input.
_INTEGER = re.compile(r"[+-]?\d{1,18}")
_KEYS = re.compile(r"[0-9*#A-Da-d]{1,64}")
# `key@inter_no`: an ASCII key without spaces, then the recognition number. Chinese and
# multi-word transcripts never match, so a plain-text result is never mistaken for a reference.
_REDIS_REFERENCE = re.compile(r"(?P<key>[!-?A-~]{1,512})@(?P<inter_no>\d{1,20})")
# The China Mobile variant: the recording's file name, then the transcript in brackets.
_FILE_AND_TEXT = re.compile(
    r"(?P<file>[^\[\]]*\.(?:wav|pcm|vox|mp3|amr|alaw|ulaw|au|v3))\[(?P<text>.*)\]",
    re.IGNORECASE | re.DOTALL,
)
_DIALLABLE = re.compile(r"\+?\d{3,32}")
_DIAL_NOISE = re.compile(r"[\s().-]")
_UNSAFE_FILE_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")
# The doc writes "–1" (an en dash) for "others"; read typographic minuses as '-'.
_DASHES: Final = str.maketrans({"–": "-", "—": "-", "−": "-"})
# Where a joined TTS text needs no space: after CJK punctuation (and before nothing special).
_CLOSING_PUNCTUATION: Final = frozenset("。！？；，、：…」』”）》.!?;,:")

# Said before hanging up when a transfer has no Huawei rendering; English when the prompts are.
_TRANSFER_APOLOGY_ZH = "抱歉，暂时无法为您转接，请稍后再拨。再见。"
_TRANSFER_APOLOGY_EN = (
    "Sorry, we cannot transfer your call right now. Please call again later. Goodbye."
)

_JSON_TYPES: Final = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


class RequestError(ValueError):
    """A request the gateway cannot serve; answer it with `render_error(reason, userid)` (400).

    Attributes:
        reason: Human-readable, names the offending field.
        userid: The request's userid when it could be read, else "".
    """

    def __init__(self, reason: str, userid: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.userid = userid


@dataclass(frozen=True, slots=True)
class OdfsRequest:
    """One parsed request of the IVR.

    Attributes:
        userid: The call id (= inparams.call_id).
        inaction: 8, 9 or 11 (another number only with `input=hangup`).
        inparams: Every inparam as text, keys stripped of spaces.
        extparams: Every extparam as text (`transin_data`, `release_reason`, …).
        seat: The agent type, as sent (`vir` by default); informational.
        vdn_id: The VDN of a V2 request path (`/oifde/rest/v2/crs/process/{vdnId}`), else "".
        auth_token: The token offered (inparams `auth_token`, or `authToken`), else "".
    """

    userid: str
    inaction: int
    inparams: Mapping[str, str]
    extparams: Mapping[str, str] = field(default_factory=dict)
    seat: str = ""
    vdn_id: str = ""
    auth_token: str = ""

    @property
    def input(self) -> str:
        """`inparams.input`, stripped."""
        return self.inparams.get("input", "").strip()

    @property
    def input_word(self) -> str:
        """The signal `input` carries (one of INPUT_WORDS, lower case), or "" for caller input."""
        word = self.input.lower()
        return word if word in INPUT_WORDS else ""

    @property
    def flow_result_type(self) -> str:
        """`inparams.flow_result_type`, stripped, with the doc's typographic minus read as '-'."""
        return self.inparams.get("flow_result_type", "").strip().translate(_DASHES)

    @property
    def is_hangup(self) -> bool:
        """True for the end-of-call request (9 or 11 with `input=hangup`), always answered 10."""
        return self.inaction != INACTION_START and self.input_word == "hangup"


@dataclass(frozen=True, slots=True)
class SpeechReference:
    """A recognition result stored in Redis, as reported in `input` (`key@inter_no`).

    Attributes:
        key: The Redis key (the part before '@').
        inter_no: The recognition number (the part after '@').
        raw: `input` as sent.
    """

    key: str
    inter_no: str
    raw: str


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the HTTP layer found for a SpeechReference.

    Attributes:
        text: The transcript; None when there is none (missing key, Redis unavailable).
        problem: Why there is none; goes into NoMatch.reason.
    """

    text: str | None = None
    problem: str = ""


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the HTTP layer knows beyond this request, for the answer (the mapping reads no clock).

    Attributes:
        start_time: When the dialogue started (outaction=10 `start_time`).
        end_time: When it ended (outaction=10 `end_time`).
        call_sor_id: The caller as reported on the call's first request, when a later request
            lacks it.
    """

    start_time: str = ""
    end_time: str = ""
    call_sor_id: str = ""


@dataclass(frozen=True, slots=True)
class Settings:
    """Gateway configuration that shapes requests and answers (env names in the doc).

    Attributes:
        string_codes: Emit `ret` and `outaction` as strings ("0", "9") instead of numbers.
        transfer_success: The `trans_result` values that mean success (Huawei: "0").
        default_timeout_s: `timeout` when the decision gives none (silent listens, KeepPlaying).
        record_dir: Where the IVR writes recordings (prompt_type 4 `prompt_wav`, a UAP path).
        record_transfers: Ask for a conference recording (`record_path`) of number transfers.
        trans_data: "auto" (passthrough, else the associated data as JSON), "passthrough" or
            "json" (the associated data only).
        asr_timeout_unit: Unit of asrNoInputTimeout etc.: "s" (the doc) or "ms".
        grammar: `grammar` of every recognition (an ASR grammar file on the UAP); may be "".
        tts_group_id: `ttsGroupId` of TTS prompts; omitted when "".
        tts_mrcp_vendor: `ttsMRCPVendor` of TTS prompts; omitted when "".
        asr_mrcp_id: `asrMRCPId` of recognitions; omitted when "".
    """

    string_codes: bool = False
    transfer_success: frozenset[str] = frozenset({"0"})
    default_timeout_s: int = 5
    record_dir: str = "Y:/record"
    record_transfers: bool = False
    trans_data: str = "auto"
    asr_timeout_unit: str = "s"
    grammar: str = ""
    tts_group_id: str = ""
    tts_mrcp_vendor: str = ""
    asr_mrcp_id: str = ""


# -- requests in ------------------------------------------------------------------------------


def parse_request(body: Any, vdn_id: str = "") -> OdfsRequest:
    """Reads one request of the IVR.

    Args:
        body: The parsed JSON body (None when the body was empty or not JSON).
        vdn_id: The `{vdnId}` of a V2 path, else "".

    Raises:
        RequestError: the body is not an object; no inparams object; no userid (nor
            inparams.call_id) or a too long one; inaction missing or not a number; an inaction
            other than 8, 9, 11 that is not a hang-up; a body (or inparams or extparams sent
            as a string) holding text that is not valid Unicode or nested too deep
            (`json_problem`).
    """
    if not isinstance(body, Mapping):
        raise RequestError(
            "the body must be a JSON object with userid, inaction and inparams, not "
            + _json_type(body)
        )
    problem = json_problem(body)
    if problem:
        raise RequestError(f"the body {problem}")
    top = {str(key).strip(): value for key, value in body.items()}
    raw_inparams = _object(top.get("inparams"))
    userid = _text(top.get("userid")).strip()
    if raw_inparams is None:
        reason = "inparams is required: a JSON object"
        if "inparams" in top and top["inparams"] is not None:
            reason = f"inparams must be a JSON object, not {_json_type(top['inparams'])}"
        raise RequestError(reason, userid[:_MAX_ID])
    inparams = {str(key).strip(): _text(value) for key, value in raw_inparams.items()}
    if not userid:
        userid = inparams.get("call_id", "").strip()
    if not userid:
        raise RequestError("userid is required (or inparams.call_id)")
    if len(userid) > _MAX_ID:
        raise RequestError(f"userid is {len(userid)} characters long; at most {_MAX_ID}")

    raw_inaction = top.get("inaction")
    if raw_inaction is None or _text(raw_inaction).strip() == "":
        raise RequestError("inaction is required: 8, 9 or 11", userid)
    inaction = _integer(raw_inaction)
    if inaction is None:
        raise RequestError(f"inaction {_preview(raw_inaction)} is not a number", userid)
    extparams = {
        str(key).strip(): _text(value)
        for key, value in (_object(top.get("extparams")) or {}).items()
    }
    token = next(
        (
            source[key].strip()
            for source in (inparams, {k: _text(v) for k, v in top.items()})
            for key in _AUTH_KEYS
            if source.get(key, "").strip()
        ),
        "",
    )
    request = OdfsRequest(
        userid=userid,
        inaction=inaction,
        inparams=inparams,
        extparams=extparams,
        seat=_text(top.get("seat")).strip(),
        vdn_id=vdn_id.strip()[:_MAX_ID],
        auth_token=token,
    )
    if inaction not in INACTIONS and not request.is_hangup:
        raise RequestError(
            f"inaction {inaction} is not supported: this gateway serves 8, 9 and 11", userid
        )
    return request


def request_id(request: OdfsRequest) -> str:
    """A request id stable per IVR event: a re-sent request gets the same id.

    Derived from (userid, inaction, inparams) with inparams in canonical JSON (sorted keys, all
    values as text) minus the auth token, which the IVR may renew between a request and its
    retry. Successive events of a call differ in `inter_idx` (echoed, incremented by every
    answer), `input` and the times (`result_time`, `begin_play`, `end_trans`, …). 76 characters.
    """
    event = {key: value for key, value in request.inparams.items() if key not in _AUTH_KEYS}
    canonical = json.dumps(
        [request.userid, request.inaction, event],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return _REQUEST_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def speech_reference(request: OdfsRequest) -> SpeechReference | None:
    """The Redis reference whose transcript the HTTP layer must look up, if `input` is one.

    Only a speech result (flow_result_type 1, or none given) of an interaction can be one; keys
    (flow_result_type 2) are never split on '@'.
    """
    if request.inaction != INACTION_INTERACTED or request.input_word:
        return None
    if request.flow_result_type not in ("1", ""):
        return None
    found = _REDIS_REFERENCE.fullmatch(request.input)
    if found is None:
        return None
    return SpeechReference(found.group("key"), found.group("inter_no"), request.input)


def event_time(request: OdfsRequest) -> str:
    """The time the request itself reports for its event (opaque text), or "" when none.

    `result_time` of an interaction, `end_trans` of a transfer: the HTTP layer uses it as
    outaction=10 `end_time`, which then stays the same on a retried request.
    """
    # Not end_play: that is when the last prompt ended, not when the event happened.
    for name in ("result_time", "end_trans"):
        value = request.inparams.get(name, "").strip()
        if value:
            return value
    return ""


def to_request(
    request: OdfsRequest, settings: Settings, transcript: Transcript | None = None
) -> pb.DecideNextActionRequest:
    """Maps a request to the vendor-neutral request.

    Args:
        request: The parsed request.
        settings: The gateway settings (`transfer_success`, `record_dir`).
        transcript: What the HTTP layer found for `speech_reference(request)`; None when the
            input is not a reference (or it was not looked up: then it is a no-match).

    Raises:
        RequestError: the request's inaction is not served (only for an OdfsRequest built
            without parse_request).
    """
    params = request.inparams
    message = pb.DecideNextActionRequest(request_id=request_id(request))
    call = message.call
    call.call_id = request.userid
    call.platform = pb.PLATFORM_HUAWEI_CEC
    call.caller = params.get("call_sor_id", "").strip()[:_MAX_NUMBER]
    callee = params.get("real_callee", "").strip() or params.get("call_dst_id", "").strip()
    call.callee = callee[:_MAX_NUMBER]
    call.flow_selector = params.get("call_dst_id", "").strip()[:_MAX_ID]
    call.tenant = request.vdn_id
    passthrough = request.extparams.get("transin_data", "")
    if passthrough:
        message.call_data.passthrough = passthrough[:_MAX_TEXT]
    for name in CALL_PARAMETERS:
        value = params.get(name, "").strip()
        if value:
            message.call_data.parameters[name] = value[:_MAX_PARAMETER_VALUE]

    if request.is_hangup:
        _fill_call_ended(message, request)
    elif request.inaction == INACTION_START:
        message.call_started.SetInParent()
    elif request.inaction == INACTION_INTERACTED:
        _fill_interaction(message, request, settings, transcript)
    elif request.inaction == INACTION_TRANSFERRED:
        _fill_transfer_finished(message, request, settings)
    else:
        raise RequestError(
            f"inaction {request.inaction} is not supported: this gateway serves 8, 9 and 11",
            request.userid,
        )
    return message


# -- answers out ------------------------------------------------------------------------------


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
    Huawei outaction degrades to a valid, safe answer (docs/gateways/huawei-odfs.md).

    Args:
        request: The request being answered.
        response: The server's decision (or the decider's fallback).
        settings: The gateway settings.
        facts: Times and the caller known to the HTTP layer.
        fallback: True when `response` is the fallback: answering a `playover` it then
            transfers or hangs up at once instead of playing its prompt again, so a server that
            stays down cannot loop the caller through the same apology.
    """
    facts = facts or CallFacts()
    # The vendor's end of a call: a hang-up, or a successful transfer report, is answered 10
    # whatever was decided (the dialogue is over for the IVR either way).
    if request.is_hangup or _transfer_succeeded(request, settings):
        return _envelope(
            request, OUTACTION_HANG_UP, _hang_up(request, response, facts, "0"), settings
        )
    action = response.WhichOneof("action")
    direct = fallback and request.input_word == "playover"
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
            # outaction=10 plays nothing: the prompts play first, and the event that follows
            # gets EndDialogue from the server (the dialogue is over), answered 10.
            return _play_only(request, settings, hang_up.prompts)
        reason = "1" if hang_up.reason == pb.HANG_UP_REASON_FAILED else "0"
        return _envelope(
            request, OUTACTION_HANG_UP, _hang_up(request, response, facts, reason), settings
        )
    if action == "play_and_transfer":
        return _render_transfer(request, response, settings, facts, direct=direct)
    if action == "record":
        return _envelope(
            request, OUTACTION_INTERACT, _record(request, settings, response.record), settings
        )
    if action == "wait":
        outparams = _silent_listen(request, settings, _seconds(response.wait.duration_ms))
        return _envelope(request, OUTACTION_INTERACT, outparams, settings)
    if action == "ai_gather":
        return _envelope(
            request, OUTACTION_INTERACT, _ai_gather(request, settings, response.ai_gather), settings
        )
    if action == "end_dialogue":
        return _envelope(
            request, OUTACTION_HANG_UP, _hang_up(request, response, facts, "0"), settings
        )
    # KeepPlaying, StopPlaying, no action (or one newer than this gateway): the IVR only calls
    # once an interaction is over, so nothing is playing any more: listen without a prompt.
    outparams = _silent_listen(request, settings, settings.default_timeout_s)
    return _envelope(request, OUTACTION_INTERACT, outparams, settings)


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
    """
    mode = barge_in.mode
    speech_interrupts = mode not in (pb.BARGE_IN_MODE_NONE, pb.BARGE_IN_MODE_KEYS)
    keys_interrupt = mode not in (pb.BARGE_IN_MODE_NONE, pb.BARGE_IN_MODE_SPEECH)
    d1 = "1" if plays else "0"
    d2 = "0" if speech is None else ("1" if speech_interrupts else "2")
    if digits is None:
        return f"{d1}{d2}00000"
    d3 = "1" if keys_interrupt else "2"
    most = _clamp(digits.max_digits or digits.min_digits or 1, MAX_KEYS_MIN, MAX_KEYS_MAX)
    cancel = "1" if digits.cancel_key == "*" else "0"
    confirm = "1" if digits.terminator == "#" else "0"
    return f"{d1}{d2}{d3}{most:02d}{cancel}{confirm}"


def record_path(userid: str, inter_idx: str, settings: Settings) -> str:
    """Where the IVR records for an answer with this `inter_idx`: `{record_dir}/{userid}_{idx}.wav`.

    The recordend request echoes the same inter_idx, so the path is found again without state.
    """
    directory = settings.record_dir.rstrip("/\\")
    name = f"{_UNSAFE_FILE_CHARACTERS.sub('_', userid)}_{inter_idx}.wav"
    # A Windows-style directory (`D:\rec`, backslashes only) keeps its own separator.
    separator = "\\" if "\\" in directory and "/" not in directory else "/"
    return f"{directory}{separator}{name}" if directory else name


# -- reading helpers -------------------------------------------------------------------------


def _text(value: Any) -> str:
    """Any JSON value as text: numbers as JSON writes them (1.0 → "1"), structures as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return str(int(value))
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _object(value: Any) -> dict[str, Any] | None:
    """A JSON object, also when sent as a string holding one; None otherwise.

    Raises:
        RequestError: the string holds an object `json_problem` refuses.
    """
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.strip().startswith("{"):
        try:
            parsed = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return None
        problem = json_problem(parsed)
        if problem:
            raise RequestError(f"a parameter object sent as text {problem}")
        return dict(parsed) if isinstance(parsed, Mapping) else None
    return None


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 1e18 else None
    text = _text(value).strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def _preview(value: Any) -> str:
    text = _text(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "an object" if isinstance(value, Mapping) else "a value")


def _fill_call_ended(message: pb.DecideNextActionRequest, request: OdfsRequest) -> None:
    ended = message.call_ended
    release = request.extparams.get("release_reason", "").strip()
    # release_reason: 0 released by the business flow, 1 by the system abnormally, 2 by the user.
    if release == "2":
        ended.hung_up_by = pb.HANG_UP_PARTY_CALLER
    elif release in ("0", "1"):
        ended.hung_up_by = pb.HANG_UP_PARTY_SYSTEM
    ended.reason = f"hangup (release_reason {release})" if release else "hangup"


def _fill_interaction(
    message: pb.DecideNextActionRequest,
    request: OdfsRequest,
    settings: Settings,
    transcript: Transcript | None,
) -> None:
    word = request.input_word
    kind = request.flow_result_type
    text = request.input
    if word == "playover":
        message.playback_finished.SetInParent()
    elif word == "timeout":
        message.no_input.SetInParent()
    elif word == "nomatch":
        message.no_match.reason = f"nomatch (flow_result_type {kind or 'not given'})"
    elif word == "sys_err":
        message.platform_error.code = "sys_err"
        message.platform_error.message = (
            f"the IVR reported a system error (flow_result_type {kind or 'not given'})"
        )
    elif word == "recordend" or kind == "4":
        recorded = text if text and not word else ""
        message.recording_finished.recording_uri = (
            recorded or record_path(request.userid, _echoed_index(request), settings)
        )[:_MAX_TEXT]
    elif kind in ("1", ""):
        if kind == "" and not text:
            message.no_input.SetInParent()
        else:
            _fill_speech(message, request, transcript)
    elif kind == "2":
        _fill_keys(message, text)
    elif kind == "3":
        # "No input (playing only)" without a signal word: nothing was said or pressed.
        message.no_input.SetInParent()
    else:
        message.no_match.input = text[:_MAX_REASON]
        message.no_match.reason = f"flow_result_type {kind} is not a voice result"[:_MAX_REASON]


def _fill_speech(
    message: pb.DecideNextActionRequest, request: OdfsRequest, transcript: Transcript | None
) -> None:
    reference = speech_reference(request)
    if reference is not None:
        if transcript is None or transcript.text is None:
            problem = transcript.problem if transcript is not None else "not looked up"
            message.no_match.reason = f"transcript {reference.raw}: {problem}"[:_MAX_REASON]
            return
        text = transcript.text
    else:
        text = request.input
        found = _FILE_AND_TEXT.fullmatch(text)
        if found is not None:
            text = found.group("text")
    if not text.strip():
        message.no_match.reason = "empty transcript"
        return
    message.speech_recognized.text = text.strip()[:_MAX_TEXT]


def _fill_keys(message: pb.DecideNextActionRequest, text: str) -> None:
    if not text:
        message.no_input.SetInParent()
        return
    if not _KEYS.fullmatch(text):
        message.no_match.input = text[:_MAX_REASON]
        message.no_match.reason = "input is not a key sequence"
        return
    keys = text.upper()
    # With `#` as the confirm key (model_type d7) the IVR may report it last: the contract
    # keeps the terminator out of the digits.
    if len(keys) > 1 and keys.endswith("#"):
        message.digits_entered.digits = keys[:-1][:_MAX_DIGITS]
        message.digits_entered.terminator = "#"
    else:
        message.digits_entered.digits = keys[:_MAX_DIGITS]


def _fill_transfer_finished(
    message: pb.DecideNextActionRequest, request: OdfsRequest, settings: Settings
) -> None:
    finished = message.transfer_finished
    result = request.inparams.get("trans_result", "").strip()
    if not result:
        finished.outcome = pb.TRANSFER_OUTCOME_UNSPECIFIED
        finished.reason = "no trans_result"
        return
    finished.outcome = (
        pb.TRANSFER_OUTCOME_SUCCEEDED
        if result in settings.transfer_success
        else pb.TRANSFER_OUTCOME_FAILED
    )
    finished.reason = f"trans_result {result}"[:_MAX_REASON]


def _transfer_succeeded(request: OdfsRequest, settings: Settings) -> bool:
    if request.inaction != INACTION_TRANSFERRED:
        return False
    return request.inparams.get("trans_result", "").strip() in settings.transfer_success - {""}


def _echoed_index(request: OdfsRequest) -> str:
    """The inter_idx the IVR echoed (the one of the answer that asked for this interaction)."""
    echoed = _integer(request.inparams.get("inter_idx", ""))
    return str(echoed) if echoed is not None and echoed >= 0 else "1"


def _next_index(request: OdfsRequest) -> str:
    """inter_idx of the answer: the echoed one plus one, or 1 when none was echoed."""
    echoed = _integer(request.inparams.get("inter_idx", ""))
    return str(echoed + 1) if echoed is not None and 0 <= echoed < 10**17 else "1"


# -- rendering helpers ------------------------------------------------------------------------


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
        location = _audio_location(first_audio)
        full_path = first_audio.WhichOneof("source") == "url" or bool(
            re.search(r"[/\\:]", location)
        )
        return _Prompt(PROMPT_PATH if full_path else PROMPT_FILE, location)
    return _Prompt()


def _audio_location(audio: pb.AudioFile) -> str:
    source = audio.WhichOneof("source")
    if source == "media_name":
        return audio.media_name.strip()
    if source == "url":
        return audio.url.strip()
    return ""


def _join(texts: Sequence[str]) -> str:
    """Joins TTS texts: directly after closing punctuation (Chinese), else with a space."""
    joined = texts[0]
    for text in texts[1:]:
        joined += text if joined[-1] in _CLOSING_PUNCTUATION else " " + text
    return joined


def _playable(prompts: pb.Prompts) -> bool:
    return _choose_prompt(prompts).plays


def _language(prompt: _Prompt, speech: pb.SpeechRecognition | None, fallback: str = "") -> str:
    """`language`: 1 for English, 0 (Chinese) otherwise, from the TTS, else the recognition."""
    tag = (prompt.tts.language if prompt.tts is not None else "") or (
        speech.language if speech is not None else ""
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
    listening = digits is not None or speech is not None
    if timeout_s is None:
        waits = [
            digits.first_digit_timeout_ms if digits is not None else 0,
            speech.no_input_timeout_ms if speech is not None else 0,
        ]
        longest = max(waits)
        timeout_s = _seconds(longest) if longest > 0 else settings.default_timeout_s
    outparams = {
        "call_id": request.userid,
        "prompt_type": prompt.prompt_type,
        "prompt_wav": prompt.wav,
        "prompt_text": prompt.text,
        "language": _language(prompt, speech, language_tag),
        "inter_idx": _next_index(request),
        "model_type": model_type(
            plays=prompt.plays, digits=digits, speech=speech, barge_in=prompts.barge_in
        ),
        # A play-only interaction waits for nothing after the prompt.
        "timeout": str(_clamp(timeout_s, TIMEOUT_MIN_S, TIMEOUT_MAX_S)) if listening else "0",
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


def _silent_listen(request: OdfsRequest, settings: Settings, timeout_s: int) -> dict[str, str]:
    """An interaction that plays nothing and listens for speech or one key for timeout_s."""
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
        timeout_s=_seconds(timeout_ms) if timeout_ms > 0 else settings.default_timeout_s,
        trailing_text=gather.greeting,
        language_tag=gather.language,
    )


def _record(request: OdfsRequest, settings: Settings, record: pb.Record) -> dict[str, str]:
    """prompt_type 4: the IVR records to `prompt_wav`; it plays no prompt of ours first."""
    prompt = _choose_prompt(record.prompts)
    index = _next_index(request)
    seconds = (
        _seconds(record.max_duration_ms)
        if record.max_duration_ms > 0
        else settings.default_timeout_s
    )
    return {
        "call_id": request.userid,
        "prompt_type": PROMPT_RECORD,
        "prompt_wav": record_path(request.userid, index, settings),
        # Mandatory in the doc's table; the standard IVR flow does not play it for a recording.
        "prompt_text": prompt.text,
        "language": _language(prompt, None),
        "inter_idx": index,
        "timeout": str(_clamp(seconds, TIMEOUT_MIN_S, TIMEOUT_MAX_S)),
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
    for name, milliseconds in (
        ("asrNoInputTimeout", speech.no_input_timeout_ms),
        ("asrRecognitionTimeout", speech.max_duration_ms),
        ("asrSpeechCompleteTimeout", speech.end_silence_timeout_ms),
    ):
        if milliseconds > 0:
            value = milliseconds if settings.asr_timeout_unit == "ms" else _seconds(milliseconds)
            fields[name] = str(value)
    return fields


def _hang_up(
    request: OdfsRequest, response: pb.DecideNextActionResponse, facts: CallFacts, reason: str
) -> dict[str, str]:
    """outaction=10 parameters."""
    end_time = facts.end_time or event_time(request)
    return {
        "call_id": request.userid,
        "call_sor_id": _caller(request, response, facts),
        "call_dst_id": request.inparams.get("call_dst_id", "").strip(),
        "start_time": facts.start_time or end_time,
        "end_time": end_time,
        "release_reason": reason,
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
        "inter_idx": _next_index(request),
    }
    trans_data = _trans_data(transfer, response.call_data.passthrough, settings)
    if trans_data:
        outparams["trans_data"] = trans_data
    if transfer.caller_id.strip():
        outparams["calling_num"] = transfer.caller_id.strip()
    if settings.record_transfers and trans_type == TRANS_NUMBER:
        outparams["record_path"] = record_path(
            request.userid, outparams["inter_idx"] + "_transfer", settings
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
    """`trans_data`: the IVR's own transin_data handed on, else the associated data as JSON."""
    associated = (
        json.dumps(
            dict(transfer.associated_data),
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        )
        if transfer.associated_data
        else ""
    )
    if settings.trans_data == "passthrough":
        return passthrough
    if settings.trans_data == "json":
        return associated
    return passthrough or associated


def _transfer_apology(prompts: pb.Prompts) -> str:
    for item in prompts.items:
        if item.WhichOneof("content") == "tts" and item.tts.language:
            english = item.tts.language.lower().startswith("en")
            return _TRANSFER_APOLOGY_EN if english else _TRANSFER_APOLOGY_ZH
    return _TRANSFER_APOLOGY_ZH


def _seconds(milliseconds: int) -> int:
    """Whole seconds, rounded up (a 2500 ms wait must not become 2 s)."""
    return max(0, math.ceil(milliseconds / 1000))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def json_problem(value: Any) -> str:
    """Why a parsed value cannot be mapped, or "" (see `gateways.payloads.json_problem`)."""
    return _payload_problem(value, _MAX_DEPTH)
