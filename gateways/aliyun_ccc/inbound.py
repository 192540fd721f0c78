"""Aliyun CloudCallCenter `Dialogue` requests → dialogue.v1, as pure functions.

The platform's IVR calls `Action=Dialogue` after each caller turn (RPC style: parameters in the
query or a form body). This module parses and checks a request (`parse_dialogue`), names its
turn (`request_id`) and maps it (`to_request`); `outbound.py` renders the answer. No web
framework, no network, no clock, no randomness, no module state. `docs/gateways/aliyun-ccc.md`
is the mapping's reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from dialogue.v1 import dialogue_pb2 as pb
from gateways.payloads import CallbackError

__all__ = [
    "DEFAULT_FILLER_TEXT",
    "DEFAULT_TRANSFER_TEXT",
    "HANGUP",
    "DialogueCall",
    "DialogueError",
    "Settings",
    "check_text",
    "internal_error",
    "missing_parameter",
    "occurrence_signal",
    "parse_dialogue",
    "request_id",
    "response_format_of",
    "to_request",
]

# The Feedback action that ends the call, as the vendor writes it; a request's ActionKey says
# it (any case) when the caller hung up.
HANGUP = "Hangup"
# What the caller hears instead of a transfer the API cannot make: no promise of an agent.
DEFAULT_TRANSFER_TEXT = "抱歉，现在无法为您转接人工服务，请稍后拨打我们的客服热线。再见。"
# What a broadcast says when the decision has nothing to say: a short acknowledgement.
DEFAULT_FILLER_TEXT = "好的。"

_ACTION = "Dialogue"
_JSON = "JSON"
_XML = "XML"
_REQUEST_ID_PREFIX = "aliyun-ccc-"

# Mirrors of the server's request limits (server/validation.py): a request the server would
# refuse is refused here, naming the vendor's parameter, instead of ending in a fallback.
_MAX_ID = 128
_MAX_NUMBER = 64
_MAX_TEXT = 4096
_MAX_PARAMETER_VALUE = 1024
_LIMITS = (
    ("CallId", _MAX_ID),
    ("InstanceId", _MAX_ID),
    ("ScenarioId", _MAX_ID),
    ("CallingNumber", _MAX_NUMBER),
    ("CalledNumber", _MAX_NUMBER),
    ("Utterance", _MAX_TEXT),
    ("TaskId", _MAX_PARAMETER_VALUE),
    ("ScriptId", _MAX_PARAMETER_VALUE),
)
_CALL_TYPES = {"outbound": "Outbound", "inbound": "Inbound"}

# Characters XML 1.0 cannot carry at all, not even escaped.


class DialogueError(CallbackError):
    """A request the API rejects; rendered by `outbound.render_error` in the Aliyun envelope.

    The vendor's `CallbackError`: it carries the Aliyun error code and HTTP status too.

    Attributes:
        code: The Aliyun error code (`MissingParameter`, `NotExist.Instance`, …).
        message: The Aliyun error message (also `reason`).
        http_status: The HTTP status of the error answer.
    """

    code: str
    message: str
    http_status: int

    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


def internal_error() -> DialogueError:
    """The vendor's documented 500, for the HTTP layer when it has no better answer."""
    return DialogueError(
        "InternalError",
        "An error occurred while processing your request. Please try again later. "
        "Submit a ticket if the error still exists.",
        500,
    )


def missing_parameter(name: str) -> DialogueError:
    """Aliyun's error for a mandatory parameter that is absent or blank."""
    return DialogueError(
        "MissingParameter",
        f'The input parameter "{name}" that is mandatory for processing this request is not '
        "supplied.",
        400,
    )


@dataclass(frozen=True, slots=True)
class DialogueCall:
    """One parsed `Dialogue` request (values stripped; `call_type` is Outbound or Inbound)."""

    instance_id: str
    call_id: str
    call_type: str
    calling_number: str
    called_number: str
    utterance: str
    scenario_id: str
    task_id: str
    script_id: str
    action_key: str
    response_format: str


@dataclass(frozen=True, slots=True)
class Settings:
    """Gateway configuration the mapping needs; every field has a working default.

    Attributes:
        allowed_instances: Instances this gateway serves; empty accepts any InstanceId.
        transfer_text: Said instead of a transfer's own prompts, because the API cannot
            transfer and the call is hung up (the prompts would promise an agent).
        filler_text: Said by a broadcast that has nothing else to say (a wait, a prompt of
            audio files only, a decision to keep playing), since an empty `Content` is silence.
        action_params_hints: Put a machine-readable JSON object in Feedback.ActionParams for
            what the API cannot express (transfer, record, wait, AI gather, audio files, …);
            False keeps it always empty.
    """

    allowed_instances: frozenset[str] = field(default_factory=frozenset)
    transfer_text: str = DEFAULT_TRANSFER_TEXT
    filler_text: str = DEFAULT_FILLER_TEXT
    action_params_hints: bool = True


# -- parsing ------------------------------------------------------------------------------------


def response_format_of(params: Mapping[str, str]) -> str:
    """`XML` when the request asks for it (`Format`, case-insensitive), otherwise `JSON`.

    Public because the HTTP layer needs it to render an error for a request it cannot parse.
    """
    return _XML if _value(params, "Format").upper() == _XML else _JSON


def check_text(params: Mapping[str, str]) -> None:
    """Checks that every parameter is text: a form decoded with an exotic charset (multipart's
    `charset=unicode_escape`) can carry lone surrogates, which no UTF-8 encoder accepts.

    Public because the HTTP layer checks this before the signature, which encodes every value.

    Raises:
        DialogueError: `InvalidParameter` naming the first parameter that is not valid Unicode.
    """
    for name, value in params.items():
        if name.isascii() and value.isascii():  # no surrogate in ASCII: most parameters
            continue
        try:
            name.encode("utf-8")
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = name.encode("utf-8", "backslashreplace").decode("utf-8")
            raise _invalid(_shorten(shown), "it is not valid Unicode text") from None


def parse_dialogue(params: Mapping[str, str], settings: Settings) -> DialogueCall:
    """Parses and checks one `Dialogue` request.

    Args:
        params: The query merged with the form body; names are case-sensitive, as in Aliyun.
        settings: The gateway's settings (the instance allow-list).

    Returns:
        The call, with every value stripped of surrounding whitespace.

    Raises:
        DialogueError: `MissingParameter` for the first missing of Action, CallId, InstanceId;
            `InvalidAction` for another Action; `InvalidParameter` for an unknown CallType or a
            value longer than the server accepts; `NotExist.Instance` for an InstanceId outside
            a non-empty allow-list; `InvalidParameter` for a value that is not valid Unicode
            (`check_text`). Common RPC parameters (Format, Version, AccessKeyId, Signature,
            SignatureMethod, SignatureNonce, Timestamp, RegionId, ...) and unknown parameters
            are ignored here.
    """
    check_text(params)
    action = _value(params, "Action")
    if not action:
        raise missing_parameter("Action")
    if action != _ACTION:
        raise DialogueError(
            "InvalidAction",
            f'The specified action "{_shorten(action)}" is not valid: this endpoint serves '
            "only Action=Dialogue.",
            400,
        )
    for name in ("CallId", "InstanceId"):
        if not _value(params, name):
            raise missing_parameter(name)
    for name, limit in _LIMITS:
        value = _value(params, name)
        if len(value) > limit:
            raise _invalid(name, f"it is {len(value)} characters long; at most {limit} allowed")
    call_type = _value(params, "CallType")
    # The API serves the outbound bot ("usually Outbound"), so a missing CallType is outbound.
    canonical_type = _CALL_TYPES.get(call_type.lower() or "outbound")
    if canonical_type is None:
        raise _invalid("CallType", f'"{_shorten(call_type)}" is neither Outbound nor Inbound')
    instance_id = _value(params, "InstanceId")
    if settings.allowed_instances and instance_id not in settings.allowed_instances:
        raise DialogueError(
            "NotExist.Instance",
            f'The specified Instance does not exist: InstanceId "{_shorten(instance_id)}" '
            "is not served here.",
            404,
        )
    return DialogueCall(
        instance_id=instance_id,
        call_id=_value(params, "CallId"),
        call_type=canonical_type,
        calling_number=_value(params, "CallingNumber"),
        called_number=_value(params, "CalledNumber"),
        utterance=_value(params, "Utterance"),
        scenario_id=_value(params, "ScenarioId"),
        task_id=_value(params, "TaskId"),
        script_id=_value(params, "ScriptId"),
        action_key=_value(params, "ActionKey"),
        response_format=response_format_of(params),
    )


def to_request(
    call: DialogueCall, *, first_turn: bool = False, request_id: str = ""
) -> pb.DecideNextActionRequest:
    """Maps a parsed call to the vendor-neutral request.

    The event: `ActionKey=Hangup` (any case) is `call_ended` by the caller, whatever else the
    request says; a non-empty `Utterance` is `speech_recognized`; an empty one is `no_input`, or
    `call_started` when `first_turn`. The server starts a flow on the first event of a call it
    does not know, whatever the event, so `first_turn=False` (the default) is always safe: only
    the diagnostics note differs. Pass True only when it is known from the request itself; a
    value read from the server's state would turn a retried first turn into a different event
    under the same request id, which the server refuses.

    Args:
        call: The parsed request.
        first_turn: Whether this is known to be the call's first request.
        request_id: The idempotency key (`request_id(call, params)`); empty leaves it unset.
    """
    inbound = call.call_type.lower() == "inbound"
    # Outbound, the platform dials the customer from the service line: CallingNumber is ours.
    service_number = call.called_number if inbound else call.calling_number
    request = pb.DecideNextActionRequest(
        request_id=request_id,
        call=pb.Call(
            call_id=call.call_id,
            platform=pb.PLATFORM_ALIYUN_CCC,
            direction=pb.CALL_DIRECTION_INBOUND if inbound else pb.CALL_DIRECTION_OUTBOUND,
            caller=call.calling_number,
            callee=call.called_number,
            flow_selector=call.scenario_id or service_number,
            tenant=call.instance_id,
        ),
    )
    if call.task_id:
        request.call_data.parameters["task_id"] = call.task_id
    if call.script_id:
        request.call_data.parameters["script_id"] = call.script_id
    if call.action_key.lower() == HANGUP.lower():
        request.call_ended.hung_up_by = pb.HANG_UP_PARTY_CALLER
    elif call.utterance:
        request.speech_recognized.text = call.utterance
    elif first_turn:
        request.call_started.SetInParent()
    else:
        request.no_input.SetInParent()
    return request


def request_id(call: DialogueCall, params: Mapping[str, str], occurrence: str = "") -> str:
    """The idempotency key of one request: equal for a true retry, different per turn.

    Built from what identifies the turn (InstanceId, CallId, ActionKey, Utterance, the
    deprecated ActionParams) plus what tells two otherwise identical turns apart: the
    `SignatureNonce` (unique per signed request by the RPC rules, kept by a resend of the same
    request), else the `Timestamp`, else `occurrence`, which the HTTP layer gives unsigned
    requests (see retries.py: the same occurrence only for a byte-identical request within the
    retry window, so three silent turns stay three turns). The signature itself is left out:
    it follows from the rest.
    """
    signal = _value(params, "SignatureNonce") or _value(params, "Timestamp") or occurrence
    material = [
        call.instance_id,
        call.call_id,
        call.action_key.lower(),
        call.utterance,
        _value(params, "ActionParams"),
        signal,
    ]
    encoded = json.dumps(material, ensure_ascii=False, separators=(",", ":"))
    return _REQUEST_ID_PREFIX + hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def occurrence_signal(params: Mapping[str, str]) -> bool:
    """Whether the request itself tells a retry from a new turn (SignatureNonce or Timestamp)."""
    return bool(_value(params, "SignatureNonce") or _value(params, "Timestamp"))


# -- helpers ------------------------------------------------------------------------------------


def _value(params: Mapping[str, str], name: str) -> str:
    return params.get(name, "").strip()


def _shorten(value: str, limit: int = 64) -> str:
    """Bounds what an error message echoes back of a caller's value."""
    return value if len(value) <= limit else value[:limit] + "…"


def _invalid(name: str, why: str) -> DialogueError:
    return DialogueError(
        "InvalidParameter", f'The specified parameter "{name}" is not valid: {why}.', 400
    )
