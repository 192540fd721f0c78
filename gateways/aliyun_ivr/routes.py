"""HTTP routes of the Aliyun intelligent-voice gateway: a thin layer over `inbound` and `outbound`."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from common.settings import BOOLEAN, PAIRS, TEXT, Setting, choice, read_all, whole_number
from gateways.aliyun_ivr import inbound, outbound
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

JSON_CONTENT_TYPE = "application/json; charset=utf-8"

_log = logging.getLogger("dialogue.gateway.aliyun_ivr")


SETTINGS: Final[Mapping[str, Setting[Any]]] = MappingProxyType(
    {
        "session_timeout_s": Setting(
            "ALIYUN_SESSION_TIMEOUT_S",
            whole_number(1, "seconds"),
            3600,
            "callin answer: the longest a call may last (session_timeout)",
        ),
        "record_flag": Setting(
            "ALIYUN_RECORD", BOOLEAN, True, "callin answer: whether the platform records the call"
        ),
        "asr_model_id": Setting(
            "ALIYUN_ASR_MODEL_ID", TEXT, "", "callin answer: the ASR model (asr_model_id)"
        ),
        "asr_base_id": Setting(
            "ALIYUN_ASR_BASE_ID",
            TEXT,
            "",
            "callin answer: the ASR customisation, hot words (asr_base_id)",
        ),
        "default_mute_time_ms": Setting(
            "ALIYUN_DEFAULT_MUTE_TIME_MS",
            whole_number(0, "milliseconds"),
            10000,
            "how long an answer that listens waits for speech when the flow does not say "
            "(mute_time, clamped to 1000-20000)",
        ),
        "follow_up_mute_time_ms": Setting(
            "ALIYUN_FOLLOW_UP_MUTE_TIME_MS",
            whole_number(0, "milliseconds"),
            1000,
            "mute_time of answers that only wait for the platform to call back (after an "
            "announcement, before a transfer, after callin)",
        ),
        "cc_name": Setting(
            "ALIYUN_CC_NAME",
            TEXT,
            "",
            "the Aliyun call center for parallel transfers; empty sends them as blind transfers",
        ),
        "transfer_numbers": Setting(
            "ALIYUN_TRANSFER_NUMBERS",
            PAIRS,
            {},
            "transfer targets Aliyun cannot dial, as TARGET=NUMBER pairs (TARGET is KIND:VALUE "
            "or VALUE)",
        ),
        "number_format": Setting(
            "ALIYUN_NUMBER_FORMAT",
            choice(*outbound.NUMBER_FORMATS),
            outbound.NATIONAL,
            "how transfer numbers are sent: national (+86 numbers as dialled in China) or e164",
        ),
        "mixed_menu": Setting(
            "ALIYUN_MIXED_MENU",
            choice(*outbound.MIXED_MENU_ACTIONS),
            outbound.MENU_AS_DTMF,
            "what a menu taking keys and speech is sent as: dtmf (collects keys) or play "
            "(listens for speech only)",
        ),
    }
)
"""Every answer setting, declared once (docs/gateways/aliyun-ivr.md lists them; a test checks)."""

CALLBACK_TOKEN = Setting(
    "ALIYUN_CALLBACK_TOKEN",
    TEXT,
    "",
    "shared secret the callback URL carries (?token=) or the X-Callback-Token header; "
    "empty accepts unauthenticated callbacks (a warning at start-up)",
)


def settings_from_env(env: Mapping[str, str]) -> outbound.AnswerSettings:
    """Answer settings from ALIYUN_* variables (see docs/gateways/aliyun-ivr.md).

    Raises:
        ValueError: a variable does not parse (the message names it).
    """
    return outbound.AnswerSettings(**read_all(SETTINGS, env))


def build_router(decider: Decider, env: Mapping[str, str]) -> APIRouter:
    """The callback and report routes, bound to a decider and the ALIYUN_* settings."""
    settings = settings_from_env(env)
    token = CALLBACK_TOKEN.read(env)
    if not token:
        _log.warning(
            "AUTHENTICATION IS OFF: callbacks and reports are not checked for a token, so "
            "anyone who can reach %s can drive calls. Set ALIYUN_CALLBACK_TOKEN (and put "
            "?token=… in the callback URL configured on the platform) before exposing this "
            "gateway.",
            CALLBACK_PATH,
        )
    router = APIRouter()

    def authorised(request: Request, fields: Mapping[str, str]) -> bool:
        if not token:
            return True
        offered = fields.get("token") or request.headers.get("x-callback-token", "")
        # surrogatepass: a form in an exotic charset can carry lone surrogates; they never match.
        return hmac.compare_digest(offered.encode("utf-8", "surrogatepass"), token.encode())

    def failure(reason: str, status: int) -> Response:
        return _json(outbound.render_failure(reason), status)

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
            parsed = inbound.parse_callback(fields, body)
        except inbound.CallbackError as exc:
            return failure(exc.reason, 400)
        request.state.call_id = parsed.call_id
        outcome = await decider.decide(inbound.to_request(parsed))
        answer, _ = render_or_fallback(
            lambda response, _rescue: outbound.render_answer(parsed, response, settings),
            outcome.response,
            is_fallback=outcome.is_fallback,
            policy=decider.fallback,
            call_id=parsed.call_id,
        )
        return _json(answer)

    @router.post(REPORT_PATH)
    async def report(request: Request) -> Response:
        """The VoiceReport batch push: ends each call in the server, then acknowledges."""
        admission = await admitted(request)
        if isinstance(admission, Response):
            return admission
        _, body = admission
        try:
            reports = inbound.parse_reports(body)
        except inbound.CallbackError as exc:
            return failure(exc.reason, 400)
        ending = asyncio.gather(*(decider.decide(inbound.report_to_request(r)) for r in reports))
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
            return _json(body_out, 503)
        return _json(inbound.REPORT_ACK)

    return router


def render_refusal(_query: Mapping[str, str], reason: str, _status: int) -> tuple[str, bytes]:
    """A 413/431 before the body is read, as the platform's failure answer (`limits.Refusal`)."""
    return "application/json", json.dumps(outbound.render_failure(reason)).encode()


def _json(body: Any, status: int = 200) -> Response:
    """A JSON answer that names its charset, as the platform's UTF-8 rule asks."""
    return JSONResponse(body, status_code=status, media_type=JSON_CONTENT_TYPE)
