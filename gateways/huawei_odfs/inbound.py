"""Huawei ODFS requests in: parsing, request ids, and the DecideNextActionRequest they become.

Pure: no web framework, network, clock or mutable state. The HTTP layer parses the body
(`parse_request`), checks the token, resolves a Redis transcript reference
(`speech_reference`) itself, then calls `to_request`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Final

from common.jsontext import json_text
from dialogue.v1 import dialogue_pb2 as pb
from gateways.huawei_odfs.protocol import (
    CALL_PARAMETERS,
    INACTION_INTERACTED,
    INACTION_QUERIED,
    INACTION_START,
    INACTION_TRANSFERRED,
    INACTIONS,
    MAX_DIGITS,
    MAX_ID,
    MAX_NUMBER,
    MAX_PARAMETER_VALUE,
    MAX_REASON,
    MAX_TEXT,
    PENDING_ASSISTANT,
    PENDING_QUERY,
    TIME_FIELDS,
    OdfsRequest,
    Pending,
    RequestError,
    SpeechReference,
    Transcript,
    echoed_index,
    integer,
    json_problem,
    record_path,
)
from gateways.huawei_odfs.settings import Settings

_REQUEST_ID_PREFIX = "huawei-odfs-"
_INT32_MAX = 2**31 - 1


_AUTH_KEYS: Final = ("auth_token", "authToken")


_KEYS = re.compile(r"[0-9*#A-Da-d]{1,64}")


# `key@inter_no`: an ASCII key without spaces, then the recognition number. Chinese and
# multi-word transcripts never match, so a plain-text result is never mistaken for a reference.
_REDIS_REFERENCE = re.compile(r"(?P<key>[!-?A-~]{1,512})@(?P<inter_no>\d{1,20})")


# The China Mobile variant: the recording's file name, then the transcript in brackets.
_FILE_AND_TEXT = re.compile(
    r"(?P<file>[^\[\]]*\.(?:wav|pcm|vox|mp3|amr|alaw|ulaw|au|v3))\[(?P<text>.*)\]",
    re.IGNORECASE | re.DOTALL,
)


_JSON_TYPES: Final = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


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
    userid = json_text(top.get("userid")).strip()
    if raw_inparams is None:
        reason = "inparams is required: a JSON object"
        if "inparams" in top and top["inparams"] is not None:
            reason = f"inparams must be a JSON object, not {_json_type(top['inparams'])}"
        raise RequestError(reason, userid[:MAX_ID])
    inparams = {str(key).strip(): json_text(value) for key, value in raw_inparams.items()}
    if not userid:
        userid = inparams.get("call_id", "").strip()
    if not userid:
        raise RequestError("userid is required (or inparams.call_id)")
    if len(userid) > MAX_ID:
        raise RequestError(f"userid is {len(userid)} characters long; at most {MAX_ID}")

    raw_inaction = top.get("inaction")
    if raw_inaction is None or json_text(raw_inaction).strip() == "":
        raise RequestError("inaction is required: 8, 9, 11 or 12", userid)
    inaction = integer(raw_inaction)
    if inaction is None:
        raise RequestError(f"inaction {_preview(raw_inaction)} is not a number", userid)
    extparams = {
        str(key).strip(): json_text(value)
        for key, value in (_object(top.get("extparams")) or {}).items()
    }
    # inparams first, then the top level; only the token's keys are read as text (json_text of
    # every top-level value would serialise inparams again).
    token = next(
        (
            text
            for text in (
                *(inparams.get(key, "").strip() for key in _AUTH_KEYS),
                *(json_text(top.get(key)).strip() for key in _AUTH_KEYS),
            )
            if text
        ),
        "",
    )
    vdn_problem = json_problem(vdn_id)
    if vdn_problem:
        raise RequestError(f"the vdnId of the path {vdn_problem}", userid)
    request = OdfsRequest(
        userid=userid,
        inaction=inaction,
        inparams=inparams,
        extparams=extparams,
        seat=json_text(top.get("seat")).strip(),
        vdn_id=vdn_id.strip()[:MAX_ID],
        auth_token=token,
    )
    if inaction not in INACTIONS and not request.is_hangup:
        raise RequestError(
            f"inaction {inaction} is not supported: this gateway serves 8, 9, 11 and 12", userid
        )
    return request


def request_id(request: OdfsRequest, occurrence: int = 0) -> str:
    """A request id stable per IVR event: a re-sent request gets the same id.

    Derived from (userid, inaction, inparams) with inparams in canonical JSON (sorted keys, all
    values as text) minus the auth token, which the IVR may renew between a request and its
    retry. Successive events of a call differ in `inter_idx` (echoed, incremented by every
    answer), `input` and the times (`result_time`, `begin_play`, `end_trans`, …). When a
    request carries none of those (`has_sequence`), the HTTP layer counts how often the same
    request came as a new interaction: `occurrence` (0 the first time) tells them apart.
    76 characters.
    """
    event = {key: value for key, value in request.inparams.items() if key not in _AUTH_KEYS}
    identity: list[Any] = [request.userid, request.inaction, event]
    if occurrence > 0:
        identity.append(occurrence)
    canonical = json.dumps(identity, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return _REQUEST_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def has_sequence(request: OdfsRequest) -> bool:
    """True when the request needs no counting to be told apart: it carries `inter_idx` or a
    time, or it is the call's start or its end.

    The document calls these "special fields in the voice navigation scenario": an IVR may
    send only the mandatory ones, and then two real interactions with the same input (two
    silences, key 1 at two questions) are byte-identical requests.
    """
    if request.inaction == INACTION_START or request.is_hangup:
        # A call starts once and ends once: a repeat of either is always a retry.
        return True
    return any(request.inparams.get(name, "").strip() for name in ("inter_idx", *TIME_FIELDS))


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


def to_request(
    request: OdfsRequest,
    settings: Settings,
    transcript: Transcript | None = None,
    *,
    occurrence: int = 0,
    pending: Pending | None = None,
    event_id: str = "",
) -> pb.DecideNextActionRequest:
    """Maps a request to the vendor-neutral request.

    Args:
        request: The parsed request.
        settings: The gateway settings (`transfer_success`, `record_dir`).
        transcript: What the HTTP layer found for `speech_reference(request)`; None when the
            input is not a reference (or it was not looked up: then it is a no-match).
        occurrence: How often this same request came before as a new interaction
            (`request_id`).
        pending: The promise of an earlier answer this request gets (the HTTP layer checked
            `Pending.applies_to`): after a query it reports the queue status, after the
            assistant stand-in the assistant's end, whatever its inaction and input.
        event_id: `request_id(request, occurrence)` when the caller has it already (the HTTP
            layer needs it first): hashing the canonical request again is half its mapping.

    Raises:
        RequestError: the request's inaction is not served (only for an OdfsRequest built
            without parse_request).
    """
    params = request.inparams
    message = pb.DecideNextActionRequest(request_id=event_id or request_id(request, occurrence))
    call = message.call
    call.call_id = request.userid
    call.platform = pb.PLATFORM_HUAWEI_CEC
    call.caller = params.get("call_sor_id", "").strip()[:MAX_NUMBER]
    callee = params.get("real_callee", "").strip() or params.get("call_dst_id", "").strip()
    call.callee = callee[:MAX_NUMBER]
    call.flow_selector = params.get("call_dst_id", "").strip()[:MAX_ID]
    call.tenant = request.vdn_id
    call.capabilities.append(pb.CAPABILITY_QUEUE_STATUS)
    _fill_queue_status(message.queue_status, request, settings)
    if not message.queue_status.ListFields():
        message.ClearField("queue_status")
    passthrough = request.extparams.get("transin_data", "")
    if passthrough:
        message.call_data.passthrough = passthrough[:MAX_TEXT]
    for name in CALL_PARAMETERS:
        value = params.get(name, "").strip()
        if value:
            message.call_data.parameters[name] = value[:MAX_PARAMETER_VALUE]

    kind = pending.kind if pending is not None else ""
    if request.is_hangup:
        _fill_call_ended(message, request)
    elif kind == PENDING_QUERY or request.inaction == INACTION_QUERIED:
        message.queue_status_reported.SetInParent()
    elif kind == PENDING_ASSISTANT:
        message.assistant_finished.reason = "no voice assistant on Huawei CEC (degraded)"
    elif request.inaction == INACTION_START:
        message.call_started.SetInParent()
    elif request.inaction == INACTION_INTERACTED:
        _fill_interaction(message, request, settings, transcript)
    elif request.inaction == INACTION_TRANSFERRED:
        _fill_transfer_finished(message, request, settings)
    else:
        raise RequestError(
            f"inaction {request.inaction} is not supported: this gateway serves 8, 9, 11 and 12",
            request.userid,
        )
    return message


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


def _preview(value: Any) -> str:
    text = json_text(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "an object" if isinstance(value, Mapping) else "a value")


def _fill_queue_status(status: pb.QueueStatus, request: OdfsRequest, settings: Settings) -> None:
    """The queue figures the request reports, from extparams (else inparams); absent = unset.

    A figure that is not a whole number ≥ 0 (or does not fit) is unknown, never zero.
    """

    def figure(name: str, limit: int) -> int | None:
        for source in (request.extparams, request.inparams):
            raw = source.get(name)
            # Absent is unknown, as integer("") says; most requests carry no figure at all.
            value = None if raw is None else integer(raw)
            if value is not None:
                return value if 0 <= value <= limit else None
        return None

    position = figure("queueIndex", _INT32_MAX)
    online = figure("agentCount", _INT32_MAX)
    idle = figure("idleAgentCount", _INT32_MAX)
    wait = figure("estimateTime", _INT32_MAX)
    if position is not None:
        status.position = position
    if online is not None:
        status.agents_online = online
    if idle is not None:
        status.agents_idle = idle
    if wait is not None:
        status.estimated_wait_ms = settings.estimate_ms(wait)


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
            recorded or record_path(request.userid, echoed_index(request), settings.record_dir)
        )[:MAX_TEXT]
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
        message.no_match.input = text[:MAX_REASON]
        message.no_match.reason = f"flow_result_type {kind} is not a voice result"[:MAX_REASON]


def _fill_speech(
    message: pb.DecideNextActionRequest, request: OdfsRequest, transcript: Transcript | None
) -> None:
    reference = speech_reference(request)
    if reference is not None:
        if transcript is None or transcript.text is None:
            problem = transcript.problem if transcript is not None else "not looked up"
            message.no_match.reason = f"transcript {reference.raw}: {problem}"[:MAX_REASON]
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
    message.speech_recognized.text = text.strip()[:MAX_TEXT]


def _fill_keys(message: pb.DecideNextActionRequest, text: str) -> None:
    if not text:
        message.no_input.SetInParent()
        return
    if not _KEYS.fullmatch(text):
        message.no_match.input = text[:MAX_REASON]
        message.no_match.reason = "input is not a key sequence"
        return
    keys = text.upper()
    # With `#` as the confirm key (model_type d7) the IVR may report it last: the contract
    # keeps the terminator out of the digits.
    if len(keys) > 1 and keys.endswith("#"):
        message.digits_entered.digits = keys[:-1][:MAX_DIGITS]
        message.digits_entered.terminator = "#"
    else:
        message.digits_entered.digits = keys[:MAX_DIGITS]


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
    finished.reason = f"trans_result {result}"[:MAX_REASON]
