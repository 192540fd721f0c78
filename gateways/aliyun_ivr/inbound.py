"""Aliyun intelligent voice interaction (智能语音交互) callbacks → dialogue.v1, as pure functions.

The platform calls the gateway after every caller turn with `call_id`, `timestamp`,
`content_type` and a JSON `content`; call records arrive separately as a JSON array of
VoiceReport objects ("HTTP batch push"). This module reads both: `parse_callback` →
`to_request`, `parse_reports` → `report_to_request`. Answers are `outbound.py`'s.

Everything here is pure: no web framework, no network, no clock, no mutable module state.
The mapping, field by field, is documented in `docs/gateways/aliyun-ivr.md`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple
from urllib.parse import unquote

from google.protobuf.timestamp_pb2 import Timestamp

from common.jsontext import json_text
from dialogue.v1 import dialogue_pb2 as pb
from gateways.aliyun_ivr.pending import (
    ASSISTANT,
    MENU_DEFERRED,
    QUEUE_QUERY,
    Pending,
    split_dynamic_id,
)
from gateways.payloads import CallbackError, json_problem

__all__ = [
    "CONTENT_TYPES",
    "REPORT_ACK",
    "Callback",
    "CallbackError",
    "TransferReport",
    "VoiceReport",
    "parse_callback",
    "parse_reports",
    "report_to_request",
    "request_id",
    "to_request",
    "transfer_outcome",
]

CONTENT_TYPES: Final = ("callin", "normal", "mute", "dtmf", "timebreak", "parallel_transfer")
"""Every `content_type` this gateway understands."""

REPORT_ACK: dict[str, Any] = {"code": 0, "msg": "接收成功"}
"""The answer the receipt channel expects (HTTP 200, `code` a number). Never mutate it."""
# Limits of the dialogue.v1 contract (server/validation.py): values beyond them are clipped so
# that a well-formed callback never becomes an INVALID_ARGUMENT request.
_MAX_ID = 128
_MAX_NUMBER = 64
_MAX_TEXT = 4096
_MAX_REASON = 1024
_MAX_DIGITS = 64
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
# The range google.protobuf.Timestamp can hold (0001-01-01 … 9999-12-31), from the epoch on.
_MAX_EPOCH_MS = 253_402_300_799_999

# Deeper than any callback or report is; shallow enough that the recursive code after the check
# (key stripping, json.dumps) stays far from Python's recursion limit.
_MAX_DEPTH = 32

_REQUEST_ID_PREFIX = "aliyun-ivr-"
_REPORT_ID_PREFIX = "aliyun-ivr-report-"
_NO_INPUT_TIMEOUT = "noinputtimeout"

_KEYS = re.compile(r"[0-9*#A-Da-d]{1,64}")
# Bounded so that int() never meets Python's digit limit on hostile input.
_INTEGER = re.compile(r"[+-]?\d{1,20}")
_DECIMAL = re.compile(r"[+-]?\d{1,20}\.\d{0,20}")

# Quote repair (see _repair_quotes): curly quotes the vendor's examples use as JSON quotes.
_CURLY_QUOTES: Final = frozenset("“”‘’")
_QUOTES: Final = frozenset('"“”‘’')
_FULL_WIDTH_SEPARATORS: Final = MappingProxyType({"：": ":", "，": ","})
_VALUE_STARTS: Final = frozenset('"“”‘’{[-0123456789tfn')

# parallel_transfer status callbacks have no published schema: these are the field names and
# values read, case-insensitively (docs/gateways/aliyun-ivr.md, "parallel_transfer").
_STATUS_KEYS: Final = (
    "status",
    "result",
    "transfer_status",
    "transfer_result",
    "bridge_status",
    "state",
)
_STATUS_MESSAGE_KEYS: Final = ("reason", "msg", "message", "status_msg", "desc")
_SUCCESS_WORDS: Final = frozenset(
    {"success", "succeeded", "successful", "ok", "answer", "answered", "connected", "bridged"}
)
# Status words that also say why the transfer failed (docs/gateways/aliyun-ivr.md): read the
# same unpublished way, so a word not listed is a failure without a reason.
_FAILURE_REASON_WORDS: Final = MappingProxyType(
    {
        "busy": pb.TRANSFER_FAILURE_BUSY,
        "noanswer": pb.TRANSFER_FAILURE_NO_ANSWER,
        "no_answer": pb.TRANSFER_FAILURE_NO_ANSWER,
        "timeout": pb.TRANSFER_FAILURE_NO_ANSWER,
        "reject": pb.TRANSFER_FAILURE_REJECTED,
        "rejected": pb.TRANSFER_FAILURE_REJECTED,
        "refused": pb.TRANSFER_FAILURE_REJECTED,
        "unreachable": pb.TRANSFER_FAILURE_UNREACHABLE,
    }
)
_FAILURE_WORDS: Final = frozenset(
    {
        "fail",
        "failed",
        "failure",
        "error",
        "cancel",
        "canceled",
        "cancelled",
        "hangup",
        *_FAILURE_REASON_WORDS,
    }
)

_CALLER_WORDS: Final = frozenset({"用户", "user", "caller", "customer"})
_SYSTEM_WORDS: Final = frozenset({"机器", "robot", "machine", "system", "platform"})

_JSON_TYPES: Final = MappingProxyType(
    {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }
)


@dataclass(frozen=True, slots=True)
class Callback:
    """One parsed callback of the platform.

    Attributes:
        call_id: The platform's call id (may contain `^`).
        timestamp: When the platform sent it, milliseconds since the epoch, as sent.
        content_type: One of CONTENT_TYPES.
        content: The parsed `content` JSON object, keys stripped of surrounding spaces.
        flow_selector: The `flow` query parameter of the configured callback URL
            (`…/aliyun/ivr/callback?flow=SELECTOR`); chooses the flow of a call the server does
            not know yet, which is how an outbound call (no callin) gets its flow. "" when absent.
    """

    call_id: str
    timestamp: int
    content_type: str
    content: dict[str, Any]
    flow_selector: str = ""

    @property
    def pending(self) -> Pending:
        """What the previous answer left pending, from the gateway's note in `dynamic_id`."""
        return split_dynamic_id(json_text(self.content.get("dynamic_id")))[1]


@dataclass(frozen=True, slots=True)
class VoiceReport:
    """One call record of the "HTTP batch push" receipt channel; every field as sent, as text.

    Attributes:
        call_id: The platform's call id.
        hangup_direction: Who hung up: `用户` (the caller) or `机器` (the platform).
        status_code: The platform's call status code.
        status_msg: The platform's call status text.
        duration: Call length as sent (seconds on the platform; kept opaque).
        start_time: Call start as sent (opaque).
        end_time: Call end as sent (milliseconds since the epoch when numeric; else opaque).
        caller: The calling number.
        callee: The called number.
        out_id: The customer's own id for the call (outbound campaigns).
        dtmf: Keys reported with the record, if any.
    """

    call_id: str
    hangup_direction: str = ""
    status_code: str = ""
    status_msg: str = ""
    duration: str = ""
    start_time: str = ""
    end_time: str = ""
    caller: str = ""
    callee: str = ""
    out_id: str = ""
    dtmf: str = ""


# -- callbacks in -----------------------------------------------------------------------------


def parse_callback(fields: Mapping[str, str], json_body: Any | None = None) -> Callback:
    """Reads one callback, tolerating the platform's (and its documentation's) quirks.

    Args:
        fields: Query parameters merged with form fields, already URL-decoded once.
        json_body: The parsed JSON body when the POST was JSON: an object with the same keys,
            where `content` may be an object or a string. Its values win over `fields`.

    Returns:
        The callback; `content` is `{}` when absent or blank.

    Raises:
        CallbackError: no call_id, a timestamp that is not a number of milliseconds, an unknown
            content_type, content that is not a JSON object even after the tolerant repairs
            (URL-decoding, curly quotes outside strings), or a callback that is no text at all
            (a lone surrogate from a JSON `\\ud800` escape) or nested more than 32 levels deep.
    """
    problem = _unreadable(fields) or _unreadable(json_body)
    if problem:
        raise CallbackError(f"the callback {problem}")
    merged: dict[str, Any] = {str(k).strip(): v for k, v in fields.items()}
    if json_body is not None:
        if not isinstance(json_body, Mapping):
            raise CallbackError(
                f"the JSON body must be an object with call_id, timestamp, content_type and "
                f"content, not {_json_type(json_body)}"
            )
        merged.update({str(k).strip(): v for k, v in json_body.items()})

    call_id = json_text(merged.get("call_id")).strip()
    if not call_id:
        raise CallbackError("call_id is required")
    if len(call_id) > _MAX_ID:
        raise CallbackError(f"call_id is {len(call_id)} characters long; at most {_MAX_ID}")

    raw_timestamp = merged.get("timestamp")
    if raw_timestamp is None or json_text(raw_timestamp).strip() == "":
        raise CallbackError("timestamp is required (milliseconds since the epoch)")
    timestamp = _integer(raw_timestamp)
    if timestamp is None:
        raise CallbackError(
            f"timestamp {_preview(raw_timestamp)} is not a number (milliseconds since the epoch)"
        )
    if not 0 <= timestamp <= _MAX_EPOCH_MS:
        raise CallbackError(f"timestamp {timestamp} is out of range (milliseconds since the epoch)")

    content_type = json_text(merged.get("content_type")).strip().lower()
    if not content_type:
        raise CallbackError(f"content_type is required: one of {', '.join(CONTENT_TYPES)}")
    if content_type not in CONTENT_TYPES:
        raise CallbackError(
            f"content_type {_preview(merged.get('content_type'))} is not one of "
            f"{', '.join(CONTENT_TYPES)}"
        )

    content = _parse_content(merged.get("content"))
    # The docs say dynamic_id comes back "in the next callback address": accept it in the query
    # too when the content does not carry it.
    if "dynamic_id" not in content and merged.get("dynamic_id") not in (None, ""):
        content["dynamic_id"] = merged["dynamic_id"]
    flow = json_text(merged.get("flow")).strip()
    if len(flow) > _MAX_ID:
        raise CallbackError(f"flow is {len(flow)} characters long; at most {_MAX_ID}")
    return Callback(call_id, timestamp, content_type, content, flow)


def request_id(callback: Callback) -> str:
    """A request id stable per vendor event: a re-sent callback gets the same id.

    Derived from (call_id, timestamp, content_type, content) with content in canonical JSON
    (sorted keys), so the same event parsed from straight or curly quotes, a query or a JSON
    body gives the same id. 75 characters.
    """
    canonical = json.dumps(
        [callback.call_id, callback.timestamp, callback.content_type, callback.content],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return _REQUEST_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def to_request(callback: Callback) -> pb.DecideNextActionRequest:
    """Maps a callback to the vendor-neutral request.

    Raises:
        CallbackError: the callback's content_type is not one of CONTENT_TYPES (only possible
            for a Callback built without parse_callback).
    """
    content = callback.content
    kind = callback.content_type
    request = pb.DecideNextActionRequest(request_id=request_id(callback))
    call = request.call
    call.call_id = callback.call_id
    call.platform = pb.PLATFORM_ALIYUN_IVR
    occurred_at = _timestamp(callback.timestamp)
    if occurred_at is not None:
        request.occurred_at.CopyFrom(occurred_at)
    # Aliyun offers none of the optional capabilities (queue figures, a voice assistant), so
    # call.capabilities stays empty on every request.
    token, pending = split_dynamic_id(json_text(content.get("dynamic_id")))
    if token:
        request.call_data.continuation_token = token
    call.flow_selector = callback.flow_selector
    playback = _playback(content, kind)
    if playback is not None:
        request.playback.CopyFrom(playback)

    if kind == "callin":
        call.direction = pb.CALL_DIRECTION_INBOUND
        call.caller = _clip(_phone(content.get("caller")), _MAX_NUMBER)
        callee = _phone(content.get("callee")) or _phone(content.get("orgcallee"))
        call.callee = _clip(callee, _MAX_NUMBER)
        call.flow_selector = callback.flow_selector or _clip(callee, _MAX_ID)
        request.call_started.SetInParent()
    elif kind == "mute" and pending.kind == MENU_DEFERRED:
        # The callin answer could not collect keys, so it played nothing and asked to be called
        # back at once: this silence is the platform's, not the caller's. It starts the dialogue
        # (the server replays the menu) instead of counting as a no-input.
        request.call_started.SetInParent()
    elif kind != "parallel_transfer" and pending.kind == QUEUE_QUERY:
        # The platform has no queue figures: whatever it sends next is the (empty) report.
        request.queue_status_reported.SetInParent()
    elif kind != "parallel_transfer" and pending.kind == ASSISTANT:
        request.assistant_finished.reason = "no voice assistant on Aliyun intelligent voice"
    elif kind == "normal":
        speech = request.speech_recognized
        speech.text = _clip(json_text(content.get("words")), _MAX_TEXT)
        speech.start_offset_ms = _offset(content.get("begin_offset"))
        speech.end_offset_ms = _offset(content.get("end_offset"))
    elif kind == "mute":
        request.no_input.SetInParent()
    elif kind == "dtmf":
        _fill_digits(request, content.get("dtmf_digits"))
    elif kind == "timebreak":
        barged = request.barged_in
        began = _integer(content.get("asr_begin_time"))
        if began is not None and began > 0 and callback.timestamp >= began:
            barged.speech_duration_ms = min(callback.timestamp - began, _INT32_MAX)
        barged.media = json_text(content.get("current_media_code")).strip()
    elif kind == "parallel_transfer":
        outcome, reason, failure = transfer_outcome(content)
        request.transfer_finished.outcome = outcome
        request.transfer_finished.reason = reason
        request.transfer_finished.failure = failure
    else:
        raise CallbackError(f"content_type {kind!r} is not one of {', '.join(CONTENT_TYPES)}")
    return request


# -- call records ------------------------------------------------------------------------------


def parse_reports(body: Any) -> list[VoiceReport]:
    """Reads an "HTTP batch push" body: a JSON array of VoiceReport objects.

    Every record is returned in order, duplicates included (report_to_request makes them
    idempotent).

    Raises:
        CallbackError: the body is not an array, an element is not an object with a call_id, or
            the body is no text at all or nested too deep (as for parse_callback).
    """
    problem = _unreadable(body)
    if problem:
        raise CallbackError(f"the report body {problem}")
    if not isinstance(body, list):
        raise CallbackError(
            f"the report body must be a JSON array of VoiceReport objects, not {_json_type(body)}"
        )
    reports: list[VoiceReport] = []
    for index, item in enumerate(body):
        if not isinstance(item, Mapping):
            raise CallbackError(f"report [{index}] must be an object, not {_json_type(item)}")
        record = _strip_keys(dict(item))
        call_id = json_text(record.get("call_id")).strip()
        if not call_id:
            raise CallbackError(f"report [{index}] has no call_id")
        if len(call_id) > _MAX_ID:
            raise CallbackError(
                f"report [{index}] call_id is {len(call_id)} characters long; at most {_MAX_ID}"
            )

        reports.append(
            VoiceReport(
                call_id=call_id,
                hangup_direction=_field_text(record, "hangup_direction"),
                status_code=_field_text(record, "status_code"),
                status_msg=_field_text(record, "status_msg"),
                duration=_field_text(record, "duration"),
                start_time=_field_text(record, "start_time"),
                end_time=_field_text(record, "end_time"),
                caller=_phone(record.get("caller")),
                callee=_phone(record.get("callee")),
                out_id=_field_text(record, "out_id"),
                dtmf=_field_text(record, "dtmf"),
            )
        )
    return reports


def report_to_request(report: VoiceReport) -> pb.DecideNextActionRequest:
    """Maps a call record to `call_ended`.

    The request_id depends on the call only, and the request on the record only, so a
    duplicate delivery is answered from the server's turn log without a second turn.
    """
    digest = hashlib.sha256(report.call_id.encode("utf-8")).hexdigest()
    request = pb.DecideNextActionRequest(request_id=_REPORT_ID_PREFIX + digest)
    call = request.call
    call.call_id = report.call_id
    call.platform = pb.PLATFORM_ALIYUN_IVR
    call.caller = _clip(_phone(report.caller), _MAX_NUMBER)
    call.callee = _clip(_phone(report.callee), _MAX_NUMBER)
    ended_ms = _integer(report.end_time)
    ended = _timestamp(ended_ms) if ended_ms else None
    if ended is not None:
        request.occurred_at.CopyFrom(ended)
    direction = report.hangup_direction.strip().lower()
    if direction in _CALLER_WORDS:
        request.call_ended.hung_up_by = pb.HANG_UP_PARTY_CALLER
    elif direction in _SYSTEM_WORDS:
        request.call_ended.hung_up_by = pb.HANG_UP_PARTY_SYSTEM
    else:
        request.call_ended.hung_up_by = pb.HANG_UP_PARTY_UNSPECIFIED
    reason = " ".join(part for part in (report.status_code, report.status_msg) if part)
    request.call_ended.reason = _clip(reason, _MAX_REASON)
    return request


# -- parsing helpers ----------------------------------------------------------------------------


def _parse_content(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return _strip_keys(dict(raw))
    if not isinstance(raw, str):
        raise CallbackError(f"content must be a JSON object, not {_json_type(raw)}")
    text = raw.strip().lstrip("\ufeff")
    if not text:
        return {}
    value = _loads_tolerant(text)
    if not isinstance(value, dict):
        raise CallbackError(f"content must be a JSON object, not {_json_type(value)}")
    problem = _unreadable(value)
    if problem:
        raise CallbackError(f"content {problem}")
    return _strip_keys(value)


def _loads_tolerant(text: str) -> Any:
    """Strict JSON first; then the repairs, so valid JSON is never "repaired"."""
    candidates = [text]
    if "%" in text:
        decoded = unquote(text)
        if decoded != text:
            candidates.append(decoded)
    first_error: json.JSONDecodeError | None = None
    for candidate in candidates:
        # The repair only when strict JSON failed: it walks the text character by character.
        for repair in (False, True):
            attempt = _repair_quotes(candidate) if repair else candidate
            try:
                return json.loads(attempt, strict=False)
            except json.JSONDecodeError as exc:
                first_error = first_error or exc
            except (ValueError, RecursionError):
                continue
    where = f": {first_error.msg} at character {first_error.pos}" if first_error else ""
    raise CallbackError(f"content is not valid JSON{where}")


def _repair_quotes(text: str) -> str:
    """Turns curly quotes used as JSON quotes into `"`, leaving quotes inside strings alone.

    Outside a string every quote (and a full-width `：`/`，`) is structural. Inside one, an
    ASCII `"` ends it as usual, and a curly quote ends it only where JSON structure follows
    (`:` then a value, `,` then a quote or bracket, `}`, `]`, or the end): Chinese text such as
    `他说“好”，然后` keeps its quotes.
    """
    out: list[str] = []
    in_string = False
    escaped = False
    for index, char in enumerate(text):
        if not in_string:
            if char in _QUOTES:
                in_string = True
                out.append('"')
            else:
                out.append(_FULL_WIDTH_SEPARATORS.get(char, char))
        elif escaped:
            escaped = False
            out.append(char)
        elif char == "\\":
            escaped = True
            out.append(char)
        elif char == '"' or (char in _CURLY_QUOTES and _ends_string(text, index + 1)):
            in_string = False
            out.append('"')
        else:
            out.append(char)
    return "".join(out)


def _ends_string(text: str, start: int) -> bool:
    position = _skip_spaces(text, start)
    if position == len(text):
        return True
    head = text[position]
    if head in "}]":
        return True
    after = _skip_spaces(text, position + 1)
    following = text[after] if after < len(text) else ""
    if head in ":：":
        return following != "" and following in _VALUE_STARTS
    if head in ",，":
        return following != "" and (following in _QUOTES or following in "{[")
    return False


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _strip_keys(value: dict[Any, Any]) -> dict[str, Any]:
    """Strips spaces around keys (`" callee"`), recursively; an exact key wins a collision."""
    result: dict[str, Any] = {}
    for key, item in value.items():
        name = str(key).strip()
        if name in result and name != key:
            continue
        result[name] = _strip_nested(item)
    return result


def _strip_nested(value: Any) -> Any:
    if isinstance(value, dict):
        return _strip_keys(value)
    if isinstance(value, list):
        return [_strip_nested(item) for item in value]
    return value


def _field_text(record: Mapping[str, Any], name: str) -> str:
    return json_text(record.get(name)).strip()


def _integer(value: Any) -> int | None:
    """An integer from a JSON number or a numeric string (decimals truncated); else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INTEGER.fullmatch(text):
            return int(text)
        if _DECIMAL.fullmatch(text):
            return int(float(text))
    return None


def _offset(value: Any) -> int:
    """Milliseconds for an int64 offset; 0 (unknown) when missing, negative or absurd."""
    number = _integer(value)
    return number if number is not None and 0 < number <= _INT64_MAX else 0


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return json_text(value).strip().lower() in ("true", "1", "yes")


def _timestamp(milliseconds: int | None) -> Timestamp | None:
    if milliseconds is None or not 0 <= milliseconds <= _MAX_EPOCH_MS:
        return None
    stamp = Timestamp()
    stamp.FromMilliseconds(milliseconds)
    return stamp


def _phone(value: Any) -> str:
    """A number as sent, stripped; a leading `+` that URL-decoding turned into a space is put back."""
    text = json_text(value)
    stripped = text.strip()
    if text[:1] == " " and stripped.isdigit():
        return "+" + stripped
    return stripped


def _clip(text: str, limit: int) -> str:
    return text[:limit]


def _preview(value: Any) -> str:
    text = json_text(value)
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "an object" if isinstance(value, Mapping) else "a value")


def _playback(content: Mapping[str, Any], kind: str) -> pb.PlaybackState | None:
    """PlaybackState from the playback fields; a timebreak always interrupts a playing prompt."""
    reported = any(
        name in content
        for name in ("is_playing", "current_media_code", "play_begin_time", "play_end_time")
    )
    if not reported and kind != "timebreak":
        return None
    began = _integer(content.get("play_begin_time"))
    ended = _integer(content.get("play_end_time"))
    if "is_playing" in content:
        playing = _flag(content.get("is_playing"))
    elif kind == "timebreak":
        playing = True
    else:
        # The docs: play_end_time is 0 while playback has not ended.
        playing = bool(began) and ended == 0
    playback = pb.PlaybackState(
        playing=playing, current_media=json_text(content.get("current_media_code")).strip()
    )
    started_at = _timestamp(began) if began else None
    if started_at is not None:
        playback.started_at.CopyFrom(started_at)
    ended_at = _timestamp(ended) if ended else None
    if ended_at is not None:
        playback.ended_at.CopyFrom(ended_at)
    return playback


def _fill_digits(request: pb.DecideNextActionRequest, raw: Any) -> None:
    text = json_text(raw).strip()
    if not text or text.lower() == _NO_INPUT_TIMEOUT:
        request.digits_entered.timed_out = True
        return
    if not _KEYS.fullmatch(text):
        request.no_match.input = _clip(text, _MAX_DIGITS)
        request.no_match.reason = "dtmf_digits is not a key sequence"
        return
    keys = text.upper()
    digits = request.digits_entered
    # A collection ended by dtmf_end_character may report that key last: the contract keeps the
    # terminator out of the digits.
    if len(keys) > 1 and keys[-1] in "#*":
        digits.digits, digits.terminator = keys[:-1], keys[-1]
    else:
        digits.digits = keys


class TransferReport(NamedTuple):
    """What a parallel_transfer status says: the outcome, the reason text, and why it failed."""

    outcome: pb.TransferOutcome.ValueType
    reason: str
    failure: pb.TransferFailure.ValueType = pb.TRANSFER_FAILURE_UNSPECIFIED


def transfer_outcome(content: Mapping[str, Any]) -> TransferReport:
    """Reads the unpublished parallel_transfer status: the first status-like field decides."""
    for key in _STATUS_KEYS:
        if key not in content:
            continue
        raw = content[key]
        status = json_text(raw).strip()
        message = next(
            (
                json_text(content[name]).strip()
                for name in _STATUS_MESSAGE_KEYS
                if name in content and name != key
            ),
            "",
        )
        reason = _clip(f"{key}={status}" + (f": {message}" if message else ""), _MAX_REASON)
        word = status.lower().replace(" ", "_")
        if raw is True or word in _SUCCESS_WORDS:
            return TransferReport(pb.TRANSFER_OUTCOME_SUCCEEDED, reason)
        if raw is False or word in _FAILURE_WORDS:
            failure = _FAILURE_REASON_WORDS.get(word, pb.TRANSFER_FAILURE_UNSPECIFIED)
            return TransferReport(pb.TRANSFER_OUTCOME_FAILED, reason, failure)
        return TransferReport(pb.TRANSFER_OUTCOME_UNSPECIFIED, reason)
    return TransferReport(
        pb.TRANSFER_OUTCOME_UNSPECIFIED, "no status in the parallel_transfer callback"
    )


def _unreadable(value: Any) -> str:
    """Why a parsed value cannot be mapped, or "" (see `gateways.payloads.json_problem`)."""
    return json_problem(value, _MAX_DEPTH)
