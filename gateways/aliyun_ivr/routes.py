"""HTTP routes of the Aliyun intelligent-voice gateway: a thin layer over `mapping`."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from gateways.aliyun_ivr import mapping
from gateways.app import request_fields
from gateways.decider import Decider
from gateways.fallback import render_or_fallback
from gateways.security import auth_failed

DEFAULT_LISTEN = "127.0.0.1:8081"
CALLBACK_PATH = "/aliyun/ivr/callback"
REPORT_PATH = "/aliyun/ivr/report"
# The platform gives a receipt 700 ms before it counts the push as failed.
_REPORT_BUDGET_S = 0.6
# Server answers that a retry of the same record cannot change.
_REFUSED_FOR_GOOD = frozenset({"INVALID_ARGUMENT", "FAILED_PRECONDITION", "NOT_FOUND"})

_log = logging.getLogger("dialogue.gateway.aliyun_ivr")


def settings_from_env(env: Mapping[str, str]) -> mapping.AnswerSettings:
    """Answer settings from ALIYUN_* variables (see docs/gateways/aliyun-ivr.md).

    Raises:
        ValueError: a variable does not parse.
    """
    numbers = {}
    for pair in filter(None, env.get("ALIYUN_TRANSFER_NUMBERS", "").split(",")):
        target, separator, number = pair.partition("=")
        if not separator or not target.strip() or not number.strip():
            raise ValueError(f"ALIYUN_TRANSFER_NUMBERS entry {pair!r} is not TARGET=NUMBER")
        numbers[target.strip()] = number.strip()
    try:
        return mapping.AnswerSettings(
            session_timeout_s=int(env.get("ALIYUN_SESSION_TIMEOUT_S", "3600")),
            record_flag=env.get("ALIYUN_RECORD", "true").lower() in ("1", "true", "yes"),
            asr_model_id=env.get("ALIYUN_ASR_MODEL_ID", ""),
            asr_base_id=env.get("ALIYUN_ASR_BASE_ID", ""),
            default_mute_time_ms=int(env.get("ALIYUN_DEFAULT_MUTE_TIME_MS", "10000")),
            cc_name=env.get("ALIYUN_CC_NAME", ""),
            transfer_numbers=numbers,
        )
    except ValueError as exc:
        raise ValueError(
            f"ALIYUN_SESSION_TIMEOUT_S must be a whole number of seconds: {exc}"
        ) from exc


def build_router(decider: Decider, env: Mapping[str, str]) -> APIRouter:
    """The callback and report routes, bound to a decider and the ALIYUN_* settings."""
    settings = settings_from_env(env)
    token = env.get("ALIYUN_CALLBACK_TOKEN", "")
    router = APIRouter()

    def authorised(request: Request, fields: Mapping[str, str]) -> bool:
        if not token:
            return True
        offered = fields.get("token") or request.headers.get("x-callback-token", "")
        # surrogatepass: a form in an exotic charset can carry lone surrogates; they never match.
        return hmac.compare_digest(offered.encode("utf-8", "surrogatepass"), token.encode())

    def failure(reason: str, status: int) -> Response:
        return JSONResponse(mapping.render_failure(reason), status_code=status)

    async def admitted(request: Request) -> tuple[dict[str, str], object | None] | Response:
        """The request's fields and body, or the failure answer when unreadable or unauthorised."""
        try:
            fields, body = await request_fields(request)
        except ValueError as exc:
            return failure(str(exc), 400)
        if not authorised(request, fields):
            auth_failed(request, "token")
            return failure("missing or wrong callback token", 401)
        fields.pop("token", None)
        return fields, body

    @router.api_route(CALLBACK_PATH, methods=["GET", "POST"])
    async def callback(request: Request) -> Response:
        """One caller turn: callback → DecideNextAction → the vendor's answer."""
        admission = await admitted(request)
        if isinstance(admission, Response):
            return admission
        fields, body = admission
        try:
            parsed = mapping.parse_callback(fields, body)
        except mapping.CallbackError as exc:
            return failure(exc.reason, 400)
        request.state.call_id = parsed.call_id
        outcome = await decider.decide(mapping.to_request(parsed))
        answer, _ = render_or_fallback(
            lambda response, _rescue: mapping.render_answer(parsed, response, settings),
            outcome.response,
            is_fallback=outcome.is_fallback,
            policy=decider.fallback,
            call_id=parsed.call_id,
        )
        return JSONResponse(answer)

    @router.post(REPORT_PATH)
    async def report(request: Request) -> Response:
        """The VoiceReport batch push: ends each call in the server, then acknowledges."""
        admission = await admitted(request)
        if isinstance(admission, Response):
            return admission
        _, body = admission
        try:
            reports = mapping.parse_reports(body)
        except mapping.CallbackError as exc:
            return failure(exc.reason, 400)
        ending = asyncio.gather(*(decider.decide(mapping.report_to_request(r)) for r in reports))
        try:
            outcomes = await asyncio.wait_for(ending, _REPORT_BUDGET_S)
        except TimeoutError:
            outcomes = []
        # A record the server refused for good (a different end for a call already ended, a
        # malformed request) would be refused on every push again: only the rest is retried.
        failed = len(reports) - sum(
            outcome.fallback_reason in _REFUSED_FOR_GOOD or not outcome.is_fallback
            for outcome in outcomes
        )
        if failed:
            # Not acknowledged: the platform pushes again after 1, 5 and 10 minutes, and the
            # end of a call is idempotent, so a retry is the way nothing gets lost.
            body_out: dict[str, Any] = {
                "code": 1,
                "msg": f"暂时无法处理，请稍后重试 ({failed} calls)",
            }
            return JSONResponse(body_out, status_code=503)
        return JSONResponse(mapping.REPORT_ACK)

    return router


def render_refusal(_query: Mapping[str, str], reason: str, _status: int) -> tuple[str, bytes]:
    """A 413/431 before the body is read, as the platform's failure answer (`limits.Refusal`)."""
    return "application/json", json.dumps(mapping.render_failure(reason)).encode()
