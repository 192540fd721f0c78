"""Pure mapping between the Aliyun CloudCallCenter `Dialogue` API and `dialogue.v1`.

The platform's IVR calls `Action=Dialogue` after each caller turn (RPC style: parameters in the
query or a form body) and executes the one `Feedback` it gets back: `broadcast` (speak `Content`,
then listen) or `Hangup`. Everything here is a function of its arguments: no web framework, no
network, no clock, no randomness, no module state. The HTTP layer merges query and form into one
mapping, generates the response `RequestId`, checks the signature (`signature.py`) and calls these
functions. `docs/gateways/aliyun-ccc.md` is the mapping's reference.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf import json_format
from google.protobuf.message import Message

from dialogue.v1 import dialogue_pb2 as pb

__all__ = [
    "BROADCAST",
    "HANGUP",
    "JSON_CONTENT_TYPE",
    "XML_CONTENT_TYPE",
    "DialogueCall",
    "DialogueError",
    "Settings",
    "check_text",
    "internal_error",
    "missing_parameter",
    "parse_dialogue",
    "render_answer",
    "render_error",
    "request_id",
    "response_format_of",
    "to_request",
]

# The only two Feedback actions the API documents, spelled as the vendor writes them.
BROADCAST = "broadcast"
HANGUP = "Hangup"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
XML_CONTENT_TYPE = "application/xml;charset=utf-8"

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
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_INTERRUPTIBLE_MODES = frozenset(
    {pb.BARGE_IN_MODE_UNSPECIFIED, pb.BARGE_IN_MODE_SPEECH, pb.BARGE_IN_MODE_ANY}
)


class DialogueError(ValueError):
    """A request the API rejects; rendered by `render_error` in the Aliyun error envelope."""

    code: str
    message: str
    http_status: int

    def __init__(self, code: str, message: str, http_status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status


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
    """Gateway configuration the mapping needs; every field has a working default."""

    # Instances this gateway serves; empty accepts any InstanceId.
    allowed_instances: frozenset[str] = field(default_factory=frozenset)
    # Spoken after a transfer's own prompts, because the API cannot transfer and the call is
    # hung up instead (e.g. "请稍后拨打人工客服热线。"); empty adds nothing.
    transfer_text: str = ""
    # Put a machine-readable JSON object in Feedback.ActionParams for what the API cannot
    # express (transfer, record, wait, AI gather, audio files); False keeps it always empty.
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


def request_id(call: DialogueCall, params: Mapping[str, str]) -> str:
    """The idempotency key of one request: equal for a resent request, different per turn.

    Built from what identifies the turn (InstanceId, CallId, ActionKey, Utterance, the
    deprecated ActionParams) plus what tells two otherwise identical turns apart: the
    `SignatureNonce` (unique per signed request by the RPC rules, kept by a resend of the same
    request), else the `Timestamp`, else nothing, in which case byte-identical requests are
    indistinguishable and are treated as one. The signature itself is left out: it follows
    from the rest.
    """
    occurrence = _value(params, "SignatureNonce") or _value(params, "Timestamp")
    material = [
        call.instance_id,
        call.call_id,
        call.action_key.lower(),
        call.utterance,
        _value(params, "ActionParams"),
        occurrence,
    ]
    encoded = json.dumps(material, ensure_ascii=False, separators=(",", ":"))
    return _REQUEST_ID_PREFIX + hashlib.sha256(encoded.encode("utf-8")).hexdigest()


# -- rendering ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Feedback:
    action: str
    action_params: str
    content: str
    interruptible: bool


def render_answer(
    call: DialogueCall,
    response: pb.DecideNextActionResponse,
    request_id: str,
    settings: Settings | None = None,
) -> tuple[int, str, str]:
    """Renders the server's decision as the API's answer.

    Args:
        call: The parsed request (for its response format).
        response: The server's decision.
        request_id: The RequestId of this answer, generated by the HTTP layer.
        settings: Degradation settings; defaults when None.

    Returns:
        (200, content type, body) in JSON, or in XML when the request said `Format=XML`.
    """
    feedback = _feedback(response, settings or Settings())
    if call.response_format.upper() == _XML:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><DialogueResponse>'
            + _element("RequestId", request_id)
            + "<Feedback>"
            + _element("Action", feedback.action)
            + _element("ActionParams", feedback.action_params)
            + _element("Content", feedback.content)
            + _element("Interruptible", _xml_bool(feedback.interruptible))
            + "</Feedback>"
            + _element("HttpStatusCode", "200")
            + _element("Code", "OK")
            + _element("Message", "Success")
            + _element("Success", "true")
            + "</DialogueResponse>"
        )
        return 200, XML_CONTENT_TYPE, body
    document = {
        "RequestId": request_id,
        "Feedback": {
            "Action": feedback.action,
            "ActionParams": feedback.action_params,
            "Content": feedback.content,
            "Interruptible": feedback.interruptible,
        },
        "HttpStatusCode": 200,
        "Code": "OK",
        "Message": "Success",
        "Success": True,
    }
    return 200, JSON_CONTENT_TYPE, _json(document)


def render_error(
    error: DialogueError, request_id: str, response_format: str = _JSON
) -> tuple[int, str, str]:
    """Renders an error in the API's envelope (`Success` false, no `Feedback`).

    Returns:
        (error.http_status, content type, body); XML when response_format is XML (any case).
    """
    if response_format.upper() == _XML:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><DialogueResponse>'
            + _element("RequestId", request_id)
            + _element("HttpStatusCode", str(error.http_status))
            + _element("Code", error.code)
            + _element("Message", error.message)
            + _element("Success", "false")
            + "</DialogueResponse>"
        )
        return error.http_status, XML_CONTENT_TYPE, body
    document = {
        "RequestId": request_id,
        "HttpStatusCode": error.http_status,
        "Code": error.code,
        "Message": error.message,
        "Success": False,
    }
    return error.http_status, JSON_CONTENT_TYPE, _json(document)


def _feedback(response: pb.DecideNextActionResponse, settings: Settings) -> _Feedback:
    """One Feedback for one decision; what the API cannot say goes to ActionParams hints."""
    hints: dict[str, object] = {}
    prompts: pb.Prompts | None = None
    after = ""
    kind = response.WhichOneof("action")
    if kind == "play_and_listen":
        # Keys cannot be collected (the bot only ever gets utterances): the prompt is spoken and
        # the answer comes back as speech, which menus and digit slots also accept.
        action, prompts = BROADCAST, response.play_and_listen.prompts
    elif kind == "play":
        action, prompts = BROADCAST, response.play.prompts
    elif kind == "play_and_hang_up":
        action, prompts = HANGUP, response.play_and_hang_up.prompts
    elif kind == "play_and_transfer":
        # No transfer verb: announce, then hang up; a customised IVR may act on the hint.
        action, prompts = HANGUP, response.play_and_transfer.prompts
        hints["transfer"] = _proto_json(response.play_and_transfer.transfer)
        after = settings.transfer_text
    elif kind == "record":
        # No recording: the prompts are spoken and the caller's next utterance comes back as
        # speech, which a record step does not take; it moves on when the caller falls silent.
        action, prompts = BROADCAST, response.record.prompts
        record = pb.Record()
        record.CopyFrom(response.record)
        record.ClearField("prompts")
        hints["record"] = _proto_json(record)
    elif kind == "ai_gather":
        # No voice assistant: the greeting is spoken; the flow's failure path takes over when
        # no gathered result arrives.
        greeting = pb.TextToSpeech(text=response.ai_gather.greeting)
        action, prompts = BROADCAST, pb.Prompts(items=[pb.Prompt(tts=greeting)])
        gather = pb.AiGather()
        gather.CopyFrom(response.ai_gather)
        gather.ClearField("greeting")
        hints["ai_gather"] = _proto_json(gather)
    elif kind == "wait":
        # Nothing to say: an empty broadcast listens again, which is what waiting means here.
        action = BROADCAST
        hints["wait"] = _proto_json(response.wait)
    elif kind in ("keep_playing", "stop_playing"):
        # The IVR asks only after its broadcast ended or was interrupted, so there is nothing to
        # keep or stop: an empty broadcast keeps listening.
        action = BROADCAST
    elif kind == "end_dialogue" or response.dialogue_over:
        # EndDialogue, and an action this gateway does not know on a finished dialogue.
        action = HANGUP
    else:
        # An action this gateway does not know (a newer contract) on a live dialogue: keep
        # listening rather than hang up on the caller by accident.
        action = BROADCAST
    if prompts is None:
        # Nothing is spoken: an empty broadcast may as well be interrupted, a bare hang-up not.
        content, interruptible = "", action == BROADCAST
    else:
        content, interruptible = _content(prompts, hints)
        content = _join([content, after])
    return _Feedback(action, _hints(hints, settings), content, interruptible)


def _content(prompts: pb.Prompts, hints: dict[str, object]) -> tuple[str, bool]:
    """The TTS texts joined, and whether speech may interrupt them; audio files become hints."""
    texts: list[str] = []
    audio: list[str] = []
    for item in prompts.items:
        source = item.WhichOneof("content")
        if source == "tts":
            texts.append(item.tts.text)
        elif source == "audio":
            # Feedback has no place for recorded audio: name it so the gap is visible in logs.
            audio.append(item.audio.media_name or item.audio.url)
    if audio:
        hints["audio"] = audio
    # Speech is the only input this API has, so "keys only" means nothing may interrupt.
    return _join(texts), prompts.barge_in.mode in _INTERRUPTIBLE_MODES


def _join(texts: Iterable[str]) -> str:
    """Concatenates prompt texts; a space only between two ASCII words (Chinese runs on)."""
    joined = ""
    for text in texts:
        if not text:
            continue
        if joined and _needs_space(joined[-1], text[0]):
            joined += " "
        joined += text
    return joined


def _needs_space(left: str, right: str) -> bool:
    return left.isascii() and right.isascii() and not left.isspace() and not right.isspace()


def _hints(hints: dict[str, object], settings: Settings) -> str:
    if not hints or not settings.action_params_hints:
        return ""
    return json.dumps(hints, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _proto_json(message: Message) -> dict[str, object]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


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


def _json(document: Mapping[str, object]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _element(name: str, value: str) -> str:
    text = _xml_text(value)
    # Empty elements are written self-closed, as in the vendor's own example (<ActionParams/>).
    return f"<{name}>{text}</{name}>" if text else f"<{name}/>"


def _xml_text(value: str) -> str:
    text = _NOT_XML.sub("", value)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # A literal CR would be normalised to LF by every XML parser; the reference keeps it.
    return text.replace("\r", "&#13;")


def _xml_bool(value: bool) -> str:
    return "true" if value else "false"
