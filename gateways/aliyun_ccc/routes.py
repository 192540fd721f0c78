"""HTTP routes of the Aliyun CloudCallCenter `Dialogue` gateway: a thin layer over `inbound`
and `outbound`."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from fastapi import APIRouter, Request, Response

from common.settings import BOOLEAN, ITEMS, TEXT, Setting, whole_number
from gateways.aliyun_ccc import inbound, outbound, signature
from gateways.aliyun_ccc.retries import RetryWindow
from gateways.app import request_fields
from gateways.decider import Decider
from gateways.fallback import render_or_fallback
from gateways.security import auth_failed

DEFAULT_LISTEN = "127.0.0.1:8082"
# Aliyun RequestIds are UUIDs; deriving ours from the event makes a retry's answer identical.
_REQUEST_ID_NAMESPACE = uuid.UUID("9b0e7c1e-3f5a-4c8e-9a41-2d6f0b7c5e10")
_NAMESPACE_BYTES = _REQUEST_ID_NAMESPACE.bytes

_log = logging.getLogger("dialogue.gateway.aliyun_ccc")


SETTINGS: Final[Mapping[str, Setting[Any]]] = MappingProxyType(
    {
        "instances": Setting(
            "ALIYUN_CCC_INSTANCES",
            ITEMS,
            (),
            "InstanceIds this gateway serves, comma-separated; empty serves any",
        ),
        "access_key_id": Setting(
            "ALIYUN_CCC_ACCESS_KEY_ID",
            TEXT,
            "",
            "AccessKeyId whose signature requests must carry; empty accepts unsigned requests "
            "(a warning at start-up)",
        ),
        "access_key_secret": Setting(
            "ALIYUN_CCC_ACCESS_KEY_SECRET",
            TEXT,
            "",
            "the AccessKeySecret of ALIYUN_CCC_ACCESS_KEY_ID (set both or neither)",
        ),
        "transfer_text": Setting(
            "ALIYUN_CCC_TRANSFER_TEXT",
            TEXT,
            inbound.DEFAULT_TRANSFER_TEXT,
            "said before hanging up instead of a transfer's own prompts (the API cannot transfer)",
            flag="--aliyun-ccc-transfer-text",
        ),
        "filler_text": Setting(
            "ALIYUN_CCC_FILLER_TEXT",
            TEXT,
            inbound.DEFAULT_FILLER_TEXT,
            "said by a broadcast with nothing else to say (an empty Content is silence)",
            flag="--aliyun-ccc-filler-text",
        ),
        "action_params_hints": Setting(
            "ALIYUN_CCC_ACTION_PARAMS_HINTS",
            BOOLEAN,
            True,
            "put a JSON hint in Feedback.ActionParams for what the API cannot express",
        ),
        "retry_window_ms": Setting(
            "ALIYUN_CCC_RETRY_WINDOW_MS",
            whole_number(0, "milliseconds"),
            3000,
            "a request without SignatureNonce/Timestamp is a retry only when byte-identical "
            "to one this recent; 0: never",
        ),
    }
)
"""Every setting, declared once (docs/gateways/aliyun-ccc.md lists them; a test checks)."""


def build_router(decider: Decider, env: Mapping[str, str]) -> APIRouter:
    """The `?Action=Dialogue` route, bound to a decider and the ALIYUN_CCC_* settings.

    Raises:
        ValueError: a variable does not parse, or only one half of the AccessKey pair is set.
    """
    values = {name: setting.read(env) for name, setting in SETTINGS.items()}
    settings = inbound.Settings(
        allowed_instances=frozenset(values["instances"]),
        transfer_text=values["transfer_text"],
        filler_text=values["filler_text"],
        action_params_hints=values["action_params_hints"],
    )
    key_id: str = values["access_key_id"]
    key_secret: str = values["access_key_secret"]
    if bool(key_id) != bool(key_secret):
        raise ValueError(
            "set both ALIYUN_CCC_ACCESS_KEY_ID and ALIYUN_CCC_ACCESS_KEY_SECRET, or neither"
        )
    if not key_id:
        _log.warning(
            "AUTHENTICATION IS OFF: Dialogue requests are not checked for a signature, so "
            "anyone who can reach this gateway can drive calls. Set ALIYUN_CCC_ACCESS_KEY_ID "
            "and ALIYUN_CCC_ACCESS_KEY_SECRET before exposing it."
        )
    retries = RetryWindow(values["retry_window_ms"] / 1000, time.monotonic)
    router = APIRouter()

    def reply(result: tuple[int, str, str]) -> Response:
        status, content_type, body = result
        return Response(body, status_code=status, media_type=content_type)

    @router.api_route("/", methods=["GET", "POST"])
    async def dialogue(request: Request) -> Response:
        """One turn of the outbound bot: Dialogue request → DecideNextAction → Feedback."""
        try:
            params, _ = await request_fields(request)
        except ValueError as exc:
            reason = str(exc)
            error = inbound.DialogueError("InvalidParameter", reason, 400)
            return reply(outbound.render_error(error, answer_request_id(reason)))
        response_format = inbound.response_format_of(params)
        try:
            # Before the signature, which encodes every value: text that is not Unicode is
            # refused as a parameter error rather than failing the encoder.
            inbound.check_text(params)
            if key_id:
                try:
                    signature.verify(
                        request.method, params, key_id, key_secret, now=datetime.now(UTC)
                    )
                except inbound.DialogueError as error:
                    # The error codes of `verify` are a fixed set: a bounded label.
                    auth_failed(request, error.code)
                    raise
            call = inbound.parse_dialogue(params, settings)
        except inbound.DialogueError as error:
            return reply(
                outbound.render_error(
                    error, answer_request_id(repr(sorted(params.items()))), response_format
                )
            )
        request.state.call_id = call.call_id
        occurrence = "" if inbound.occurrence_signal(params) else retries.occurrence(params)
        event_id = inbound.request_id(call, params, occurrence)
        # No "is this the first turn?" lookup: the server starts the flow on the first event of
        # a call it does not know, and a lookup would make a retried first turn a different event.
        outcome = await decider.decide(inbound.to_request(call, request_id=event_id))
        answer, _ = render_or_fallback(
            lambda response, _rescue: outbound.render_answer(
                call, response, answer_request_id(event_id), settings
            ),
            outcome.response,
            is_fallback=outcome.is_fallback,
            policy=decider.fallback,
            call_id=call.call_id,
        )
        return reply(answer)

    return router


def answer_request_id(seed: str) -> str:
    """The answer's RequestId: `str(uuid.uuid5(_REQUEST_ID_NAMESPACE, seed)).upper()`.

    Built from the SHA-1 digest directly (RFC 4122 §4.3: version 5, the RFC's variant) rather
    than through a UUID object, which costs more than the hash on every answer.
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + seed.encode("utf-8")).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex().upper()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def render_refusal(query: Mapping[str, str], reason: str, status: int) -> tuple[str, bytes]:
    """A 413/431 before the body is read, as an InvalidParameter error (`limits.Refusal`)."""
    error = inbound.DialogueError("InvalidParameter", f"The {reason}.", status)
    request_id = str(uuid.uuid4()).upper()
    _, content_type, body = outbound.render_error(
        error, request_id, inbound.response_format_of(query)
    )
    return content_type, body.encode()
