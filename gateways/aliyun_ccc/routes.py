"""HTTP routes of the Aliyun CloudCallCenter `Dialogue` gateway: a thin layer over `mapping`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from gateways.aliyun_ccc import mapping, signature
from gateways.app import request_fields
from gateways.decider import Decider
from gateways.fallback import render_or_fallback
from gateways.security import auth_failed

DEFAULT_LISTEN = "127.0.0.1:8082"
# Aliyun RequestIds are UUIDs; deriving ours from the event makes a retry's answer identical.
_REQUEST_ID_NAMESPACE = uuid.UUID("9b0e7c1e-3f5a-4c8e-9a41-2d6f0b7c5e10")

_log = logging.getLogger("dialogue.gateway.aliyun_ccc")


def build_router(decider: Decider, env: Mapping[str, str]) -> APIRouter:
    """The `?Action=Dialogue` route, bound to a decider and the ALIYUN_CCC_* settings.

    Raises:
        ValueError: only one half of the AccessKey pair is configured.
    """
    instances = frozenset(
        filter(None, (i.strip() for i in env.get("ALIYUN_CCC_INSTANCES", "").split(",")))
    )
    settings = mapping.Settings(allowed_instances=instances)
    key_id = env.get("ALIYUN_CCC_ACCESS_KEY_ID", "")
    key_secret = env.get("ALIYUN_CCC_ACCESS_KEY_SECRET", "")
    if bool(key_id) != bool(key_secret):
        raise ValueError(
            "set both ALIYUN_CCC_ACCESS_KEY_ID and ALIYUN_CCC_ACCESS_KEY_SECRET, or neither"
        )
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
            error = mapping.DialogueError("InvalidParameter", reason, 400)
            return reply(mapping.render_error(error, _request_id(reason)))
        response_format = mapping.response_format_of(params)
        try:
            # Before the signature, which encodes every value: text that is not Unicode is
            # refused as a parameter error rather than failing the encoder.
            mapping.check_text(params)
            if key_id:
                try:
                    signature.verify(
                        request.method, params, key_id, key_secret, now=datetime.now(UTC)
                    )
                except mapping.DialogueError as error:
                    # The error codes of `verify` are a fixed set: a bounded label.
                    auth_failed(request, error.code)
                    raise
            call = mapping.parse_dialogue(params, settings)
        except mapping.DialogueError as error:
            return reply(
                mapping.render_error(
                    error, _request_id(repr(sorted(params.items()))), response_format
                )
            )
        request.state.call_id = call.call_id
        event_id = mapping.request_id(call, params)
        # No "is this the first turn?" lookup: the server starts the flow on the first event of
        # a call it does not know, and a lookup would make a retried first turn a different event.
        outcome = await decider.decide(mapping.to_request(call, request_id=event_id))
        answer, _ = render_or_fallback(
            lambda response, _rescue: mapping.render_answer(
                call, response, _request_id(event_id), settings
            ),
            outcome.response,
            is_fallback=outcome.is_fallback,
            policy=decider.fallback,
            call_id=call.call_id,
        )
        return reply(answer)

    return router


def _request_id(seed: str) -> str:
    return str(uuid.uuid5(_REQUEST_ID_NAMESPACE, seed)).upper()


def render_refusal(query: Mapping[str, str], reason: str, status: int) -> tuple[str, bytes]:
    """A 413/431 before the body is read, as an InvalidParameter error (`limits.Refusal`)."""
    error = mapping.DialogueError("InvalidParameter", f"The {reason}.", status)
    request_id = str(uuid.uuid4()).upper()
    _, content_type, body = mapping.render_error(
        error, request_id, mapping.response_format_of(query)
    )
    return content_type, body.encode()
