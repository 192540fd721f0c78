"""HTTP routes of the Huawei CEC ODFS gateway: a thin layer over `mapping`.

The I/O the pure mapping leaves out happens here: reading the body, checking the token, the
Redis transcript lookup, the gRPC call, and the clock (outaction=10 times).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from dialogue.v1 import dialogue_pb2 as pb
from gateways.answers import render_or_fallback
from gateways.app import request_fields
from gateways.decider import Decider
from gateways.huawei_odfs import mapping
from gateways.huawei_odfs.tokens import DEFAULT_TTL_S, CredentialsError, TokenIssuer
from gateways.huawei_odfs.transcripts import DEFAULT_TIMEOUT_S, TranscriptStore
from gateways.security import auth_failed

DEFAULT_LISTEN = "127.0.0.1:8083"
PROCESS_PATH = "/oifde/rest/crs/process"
PROCESS_V2_PATH = "/oifde/rest/v2/crs/process/{vdn_id}"
TOKEN_PATH = "/oifde/rest/api/gettoken"
# The doc's time format (`2018090407:16:24`), local time like the IVR's own.
TIME_FORMAT = "%Y%m%d%H:%M:%S"
# Calls and events remembered for outaction=10 times; old ones are forgotten first.
_REMEMBERED = 50_000

_log = logging.getLogger("dialogue.gateway.huawei_odfs")


def settings_from_env(env: Mapping[str, str]) -> mapping.Settings:
    """Answer settings from HUAWEI_ODFS_* variables (see docs/gateways/huawei-odfs.md).

    Raises:
        ValueError: a variable does not parse.
    """
    trans_data = env.get("HUAWEI_ODFS_TRANS_DATA", "auto").strip().lower()
    if trans_data not in mapping.TRANS_DATA_MODES:
        raise ValueError(
            f"HUAWEI_ODFS_TRANS_DATA must be one of {', '.join(mapping.TRANS_DATA_MODES)}, "
            f"not {trans_data!r}"
        )
    unit = env.get("HUAWEI_ODFS_ASR_TIMEOUT_UNIT", "s").strip().lower()
    if unit not in mapping.ASR_TIMEOUT_UNITS:
        raise ValueError(f"HUAWEI_ODFS_ASR_TIMEOUT_UNIT must be s or ms, not {unit!r}")
    success = frozenset(
        filter(
            None, (v.strip() for v in env.get("HUAWEI_ODFS_TRANS_RESULT_SUCCESS", "0").split(","))
        )
    )
    if not success:
        raise ValueError("HUAWEI_ODFS_TRANS_RESULT_SUCCESS must name at least one value")
    timeout_s = _positive_int(env, "HUAWEI_ODFS_DEFAULT_TIMEOUT_S", "5")
    return mapping.Settings(
        string_codes=_flag(env, "HUAWEI_ODFS_STRING_CODES"),
        transfer_success=success,
        default_timeout_s=timeout_s,
        record_dir=env.get("HUAWEI_ODFS_RECORD_DIR", "Y:/record").strip(),
        record_transfers=_flag(env, "HUAWEI_ODFS_RECORD_TRANSFERS"),
        trans_data=trans_data,
        asr_timeout_unit=unit,
        grammar=env.get("HUAWEI_ODFS_GRAMMAR", "").strip(),
        tts_group_id=env.get("HUAWEI_ODFS_TTS_GROUP_ID", "").strip(),
        tts_mrcp_vendor=env.get("HUAWEI_ODFS_TTS_MRCP_VENDOR", "").strip(),
        asr_mrcp_id=env.get("HUAWEI_ODFS_ASR_MRCP_ID", "").strip(),
    )


def issuer_from_env(env: Mapping[str, str], clock: Callable[[], float]) -> TokenIssuer:
    """The token issuer/checker from HUAWEI_ODFS_APP_KEY/_APP_SECRET/_AUTH_TOKENS/_TOKEN_TTL_S.

    Raises:
        ValueError: only one of the key pair is set, or the lifetime does not parse.
    """
    return TokenIssuer(
        app_key=env.get("HUAWEI_ODFS_APP_KEY", "").strip(),
        app_secret=env.get("HUAWEI_ODFS_APP_SECRET", "").strip(),
        static_tokens=[t.strip() for t in env.get("HUAWEI_ODFS_AUTH_TOKENS", "").split(",")],
        ttl_s=_positive_int(env, "HUAWEI_ODFS_TOKEN_TTL_S", str(DEFAULT_TTL_S)),
        clock=clock,
    )


def build_router(
    decider: Decider, env: Mapping[str, str], *, clock: Callable[[], float] = time.time
) -> APIRouter:
    """The ODFS process routes (V1 and V2) and the token route, bound to a decider and HUAWEI_*.

    Args:
        decider: Asks the server for decisions.
        env: The environment (HUAWEI_ODFS_*, HUAWEI_ASR_*).
        clock: Seconds since the epoch, for token expiry and outaction=10 times (tests inject).

    Raises:
        ValueError: invalid HUAWEI_* configuration.
    """
    settings = settings_from_env(env)
    issuer = issuer_from_env(env, clock)
    if not issuer.checking:
        _log.warning(
            "AUTHENTICATION IS OFF: requests are not checked for an auth_token. Set "
            "HUAWEI_ODFS_APP_KEY and HUAWEI_ODFS_APP_SECRET (tokens issued at %s) or "
            "HUAWEI_ODFS_AUTH_TOKENS before exposing this gateway.",
            TOKEN_PATH,
        )
    redis_url = env.get("HUAWEI_ASR_REDIS_URL", "").strip()
    timeout_ms = _positive_int(
        env, "HUAWEI_ASR_REDIS_TIMEOUT_MS", str(int(DEFAULT_TIMEOUT_S * 1000))
    )
    store = TranscriptStore(redis_url, timeout_ms / 1000) if redis_url else None
    remembered = _Remembered(_REMEMBERED)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if store is not None:
            await store.close()

    router = APIRouter(lifespan=lifespan)

    def reply(body: dict[str, Any], status: int = 200) -> Response:
        return JSONResponse(body, status_code=status)

    def now() -> str:
        return datetime.fromtimestamp(clock()).strftime(TIME_FORMAT)

    def facts_for(parsed: mapping.OdfsRequest) -> mapping.CallFacts:
        """Times and caller from memory, so a retried request gets the same ones.

        Only called for authenticated requests: a flood of refused ones must neither push the
        calls in progress out of the bounded memory nor read what it holds.
        """
        at = now()
        caller = parsed.inparams.get("call_sor_id", "").strip()
        return mapping.CallFacts(
            start_time=remembered.first(f"start:{parsed.userid}", at),
            end_time=mapping.event_time(parsed)
            or remembered.first(f"event:{mapping.request_id(parsed)}", at),
            call_sor_id=remembered.first(f"caller:{parsed.userid}", caller)
            if caller
            else remembered.get(f"caller:{parsed.userid}"),
        )

    async def transcript_of(parsed: mapping.OdfsRequest) -> mapping.Transcript | None:
        reference = mapping.speech_reference(parsed)
        if reference is None:
            return None
        if store is None:
            return mapping.Transcript(problem="no transcript store (HUAWEI_ASR_REDIS_URL unset)")
        return await store.lookup(reference)

    async def process(request: Request, vdn_id: str) -> Response:
        """One IVR step: request → DecideNextAction → the ODFS answer."""
        try:
            _, body = await request_fields(request)
        except ValueError as exc:
            return reply(mapping.render_error(str(exc), "", settings), 400)
        try:
            parsed = mapping.parse_request(body, vdn_id)
        except mapping.RequestError as exc:
            return reply(mapping.render_error(exc.reason, exc.userid, settings), 400)
        request.state.call_id = parsed.userid
        failure = issuer.check(parsed.auth_token) if issuer.checking else None
        if failure is not None:
            _log.warning("refused call %s: %s", parsed.userid, failure.reason)
            auth_failed(
                request,
                "token_invalid"
                if failure.code == mapping.RET_BAD_TOKEN
                else "token_missing_or_expired",
            )
            if parsed.is_hangup:
                # The IVR's end flag is answered, built from the request alone (nothing
                # remembered about the call, so it tells an impostor nothing), but the engine
                # is not told.
                at = mapping.event_time(parsed) or now()
                facts = mapping.CallFacts(start_time=at, end_time=at)
                return reply(mapping.render_answer(parsed, _EMPTY, settings, facts))
            return reply(
                mapping.render_auth_failure(failure.code, failure.reason, parsed.userid, settings),
                401,
            )
        facts = facts_for(parsed)
        transcript = await transcript_of(parsed)
        outcome = await decider.decide(mapping.to_request(parsed, settings, transcript))
        answer = render_or_fallback(
            lambda response, rescue: mapping.render_answer(
                parsed, response, settings, facts, fallback=rescue or outcome.is_fallback
            ),
            outcome.response,
            decider.fallback,
            parsed.userid,
            _log,
        )
        return reply(answer)

    @router.post(PROCESS_PATH)
    async def process_v1(request: Request) -> Response:
        """`/oifde/rest/crs/process`."""
        return await process(request, "")

    @router.post(PROCESS_V2_PATH)
    async def process_v2(request: Request, vdn_id: str) -> Response:
        """`/oifde/rest/v2/crs/process/{vdnId}`: the same body; the VDN becomes Call.tenant."""
        return await process(request, vdn_id)

    @router.post(TOKEN_PATH)
    async def get_token(request: Request) -> Response:
        """`{"appKey","appSecret"}` → `{"errorCode":0,"errorMsg","authToken","expireTime"}`."""
        try:
            _, body = await request_fields(request)
        except ValueError as exc:
            return reply({"errorCode": mapping.RET_BAD_REQUEST, "errorMsg": str(exc)}, 400)
        problem = mapping.json_problem(body)
        if problem:
            # The issuer encodes what it compares: text that is not Unicode cannot be checked.
            return reply(
                {"errorCode": mapping.RET_BAD_REQUEST, "errorMsg": f"the body {problem}"}, 400
            )
        fields = body if isinstance(body, Mapping) else {}
        try:
            token = issuer.issue(fields.get("appKey"), fields.get("appSecret"))
        except CredentialsError as exc:
            auth_failed(request, "credentials")
            status = 401 if issuer.issuing else 403
            return reply({"errorCode": mapping.RET_BAD_TOKEN, "errorMsg": str(exc)}, status)
        return reply(
            {
                "errorCode": 0,
                "errorMsg": "success",
                "authToken": token,
                "expireTime": issuer.ttl_s,
            }
        )

    return router


_EMPTY = pb.DecideNextActionResponse()


class _Remembered:
    """A bounded map of first-seen values: the first value stored under a key stays."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._values: OrderedDict[str, str] = OrderedDict()

    def first(self, key: str, value: str) -> str:
        """The value first stored under key, storing `value` if there is none."""
        stored = self._values.get(key)
        if stored is None:
            self._values[key] = stored = value
            if len(self._values) > self._limit:
                self._values.popitem(last=False)
        return stored

    def get(self, key: str) -> str:
        return self._values.get(key, "")


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _positive_int(env: Mapping[str, str], name: str, default: str) -> int:
    raw = env.get(name, default).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {value}")
    return value


def render_refusal(_query: Mapping[str, str], reason: str, _status: int) -> tuple[str, bytes]:
    """A 413/431 before the body is read, as an ODFS error answer (`limits.Refusal`)."""
    # The default settings: the body was not read, so `ret` is a number whatever
    # HUAWEI_ODFS_STRING_CODES says.
    return "application/json", json.dumps(
        mapping.render_error(reason, "", mapping.Settings())
    ).encode()
