"""HTTP routes of the Huawei CEC ODFS gateway: a thin layer over the pure `inbound`/`outbound`.

The I/O the pure mapping leaves out happens here: reading the body, checking the token, the
Redis transcript lookup, the gRPC call, the clock (outaction=10 times, the retry window of
requests without inter_idx) and the per-call memory (caller, access code, promises).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from dialogue.v1 import dialogue_pb2 as pb
from gateways.app import request_fields
from gateways.decider import Decider
from gateways.fallback import render_or_fallback
from gateways.huawei_odfs import inbound, outbound, protocol
from gateways.huawei_odfs.settings import ACCESS_SETTINGS, Settings, settings_from_env
from gateways.huawei_odfs.tokens import CredentialsError, TokenIssuer
from gateways.huawei_odfs.transcripts import TranscriptStore
from gateways.security import auth_failed

DEFAULT_LISTEN = "127.0.0.1:8083"
PROCESS_PATH = "/oifde/rest/crs/process"
PROCESS_V2_PATH = "/oifde/rest/v2/crs/process/{vdn_id}"
TOKEN_PATH = "/oifde/rest/api/gettoken"
# The doc's time format (`2018090407:16:24`), local time like the IVR's own.
TIME_FORMAT = "%Y%m%d%H:%M:%S"
# Calls and events remembered for outaction=10 times; old ones are forgotten first.
_REMEMBERED = 50_000

T = TypeVar("T")

_log = logging.getLogger("dialogue.gateway.huawei_odfs")


def issuer_from_env(env: Mapping[str, str], clock: Callable[[], float]) -> TokenIssuer:
    """The token issuer/checker from HUAWEI_ODFS_APP_KEY/_APP_SECRET/_AUTH_TOKENS/_TOKEN_TTL_S.

    Raises:
        ValueError: only one of the key pair is set, or the lifetime does not parse.
    """
    access = {name: setting.read(env) for name, setting in ACCESS_SETTINGS.items()}
    return TokenIssuer(
        app_key=access["app_key"],
        app_secret=access["app_secret"],
        static_tokens=list(access["auth_tokens"]),
        ttl_s=access["token_ttl_s"],
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
    config = settings_from_env(env)
    issuer = issuer_from_env(env, clock)
    if not issuer.checking:
        _log.warning(
            "AUTHENTICATION IS OFF: requests are not checked for an auth_token. Set "
            "HUAWEI_ODFS_APP_KEY and HUAWEI_ODFS_APP_SECRET (tokens issued at %s) or "
            "HUAWEI_ODFS_AUTH_TOKENS before exposing this gateway.",
            TOKEN_PATH,
        )
    redis_url = ACCESS_SETTINGS["redis_url"].read(env).strip()
    timeout_ms = ACCESS_SETTINGS["redis_timeout_ms"].read(env)
    store = TranscriptStore(redis_url, timeout_ms / 1000) if redis_url else None
    remembered = _Remembered(_REMEMBERED)
    # What the gateway promised per call (Pending), which request ids got a promise kept (so
    # their retries get it again), and the occurrence count of requests without inter_idx.
    promises: _Bounded[protocol.Pending] = _Bounded(_REMEMBERED)
    answered: _Bounded[protocol.Pending] = _Bounded(_REMEMBERED)
    occurrences: _Bounded[tuple[int, int]] = _Bounded(_REMEMBERED)
    # Every request id already served: a late or reordered retry of an earlier request is
    # answered as it was (the server replays its decision) and neither takes nor changes a
    # promise made since.
    served: _Bounded[bool] = _Bounded(_REMEMBERED)

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

    def facts_for(
        parsed: protocol.OdfsRequest, rid: str, pending: protocol.Pending | None
    ) -> protocol.CallFacts:
        """Times, caller and access code from memory, so a retried request gets the same ones.

        Both times are this gateway's clock. Only called for authenticated requests: a flood of
        refused ones must neither push the calls in progress out of the bounded memory nor
        read what it holds.
        """
        at = now()
        return protocol.CallFacts(
            start_time=remembered.first(f"start:{parsed.userid}", at),
            end_time=remembered.first(f"event:{rid}", at),
            call_sor_id=first_reported(parsed, "call_sor_id"),
            call_dst_id=first_reported(parsed, "call_dst_id"),
            pending=pending,
        )

    def first_reported(parsed: protocol.OdfsRequest, name: str) -> str:
        value = parsed.inparams.get(name, "").strip()
        key = f"{name}:{parsed.userid}"
        return remembered.first(key, value) if value else remembered.get(key)

    def occurrence_of(parsed: protocol.OdfsRequest) -> int:
        """How often this same request came before as a new interaction (see docs, Idempotency).

        With `inter_idx` or a time the request tells itself apart: 0. Without, a request
        identical to an earlier one of the call is its network retry while it comes within
        HUAWEI_ODFS_RETRY_WINDOW_MS of that occurrence's first arrival (other requests in
        between or not); later, a new interaction.
        """
        if inbound.has_sequence(parsed):
            return 0
        key = f"{parsed.userid}\n{inbound.request_id(parsed)}"
        at_ms = int(clock() * 1000)
        seen = occurrences.get(key)
        if seen is not None and at_ms - seen[1] <= config.retry_window_ms:
            return seen[0]
        occurrence = 0 if seen is None else seen[0] + 1
        occurrences.put(key, (occurrence, at_ms))
        return occurrence

    def promise_for(parsed: protocol.OdfsRequest, rid: str, retry: bool) -> protocol.Pending | None:
        """The promise this request gets kept: the one it got before if it is a retry."""
        kept = answered.get(rid)
        if kept is not None or parsed.is_hangup or retry:
            return kept
        pending = promises.get(parsed.userid)
        if pending is None or not pending.applies_to(rid):
            return None
        answered.put(rid, pending)
        return pending

    async def transcript_of(parsed: protocol.OdfsRequest) -> protocol.Transcript | None:
        reference = inbound.speech_reference(parsed)
        if reference is None:
            return None
        if store is None:
            return protocol.Transcript(problem="no transcript store (HUAWEI_ASR_REDIS_URL unset)")
        return await store.lookup(reference)

    async def process(request: Request, vdn_id: str) -> Response:
        """One IVR step: request → DecideNextAction → the ODFS answer."""
        try:
            _, body = await request_fields(request)
        except ValueError as exc:
            return reply(outbound.render_error(str(exc), "", config), 400)
        try:
            parsed = inbound.parse_request(body, vdn_id)
        except protocol.RequestError as exc:
            return reply(outbound.render_error(exc.reason, exc.userid, config), 400)
        request.state.call_id = parsed.userid
        failure = issuer.check(parsed.auth_token) if issuer.checking else None
        if failure is not None:
            _log.warning("refused call %s: %s", parsed.userid, failure.reason)
            auth_failed(
                request,
                "token_invalid"
                if failure.code == protocol.RET_BAD_TOKEN
                else "token_missing_or_expired",
            )
            if parsed.is_hangup:
                # The IVR's end flag is answered, built from the request alone (nothing
                # remembered about the call, so it tells an impostor nothing), but the engine
                # is not told.
                at = now()
                facts = protocol.CallFacts(start_time=at, end_time=at)
                return reply(outbound.render_answer(parsed, _EMPTY, config, facts))
            return reply(
                outbound.render_auth_failure(failure.code, failure.reason, parsed.userid, config),
                401,
            )
        occurrence = occurrence_of(parsed)
        rid = inbound.request_id(parsed, occurrence)
        retry = served.get(rid) is not None
        served.put(rid, True)
        kept = promise_for(parsed, rid, retry)
        facts = facts_for(parsed, rid, kept)
        transcript = await transcript_of(parsed)
        outcome = await decider.decide(
            inbound.to_request(
                parsed, config, transcript, occurrence=occurrence, pending=kept, event_id=rid
            )
        )
        answer, rendered = render_or_fallback(
            lambda response, is_fallback: outbound.render_answer(
                parsed, response, config, facts, fallback=is_fallback
            ),
            outcome.response,
            is_fallback=outcome.is_fallback,
            policy=decider.fallback,
            call_id=parsed.userid,
        )
        promise = outbound.promise_of(parsed, rid, rendered, answer)
        if kept is not None and kept.kind in (protocol.PENDING_FINAL, protocol.PENDING_RECORD):
            # The answer was the promise itself: nothing more is owed.
            promise = None
        # A retry was answered as before: the call's promise stands as it is.
        if not retry and promise is None:
            promises.pop(parsed.userid)
        elif not retry and promise is not None:
            promises.put(parsed.userid, promise)
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
            return reply({"errorCode": protocol.RET_BAD_REQUEST, "errorMsg": str(exc)}, 400)
        problem = protocol.json_problem(body)
        if problem:
            # The issuer encodes what it compares: text that is not Unicode cannot be checked.
            return reply(
                {"errorCode": protocol.RET_BAD_REQUEST, "errorMsg": f"the body {problem}"}, 400
            )
        fields = body if isinstance(body, Mapping) else {}
        try:
            token = issuer.issue(fields.get("appKey"), fields.get("appSecret"))
        except CredentialsError as exc:
            auth_failed(request, "credentials")
            status = 401 if issuer.issuing else 403
            return reply({"errorCode": protocol.RET_BAD_TOKEN, "errorMsg": str(exc)}, status)
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


class _Bounded(Generic[T]):
    """A bounded map; the least recently stored entries are forgotten first."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._values: OrderedDict[str, T] = OrderedDict()

    def get(self, key: str) -> T | None:
        return self._values.get(key)

    def put(self, key: str, value: T) -> None:
        self._values[key] = value
        self._values.move_to_end(key)
        if len(self._values) > self._limit:
            self._values.popitem(last=False)

    def pop(self, key: str) -> None:
        self._values.pop(key, None)


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


def render_refusal(_query: Mapping[str, str], reason: str, _status: int) -> tuple[str, bytes]:
    """A 413/431 before the body is read, as an ODFS error answer (`limits.Refusal`)."""
    # The default settings: the body was not read, so `ret` is a number whatever
    # HUAWEI_ODFS_STRING_CODES says.
    return "application/json", json.dumps(outbound.render_error(reason, "", Settings())).encode()
