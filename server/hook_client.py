"""Performing the HTTP hooks a turn needs (external understanding, fulfillment).

The engine is pure: `decide` stops at a hook and says what to call (`HookCall`); `run_turn`
performs it with one shared `httpx.AsyncClient` and `resume`s the turn with the result, until
the turn is done. Each call is bounded by its own deadline — connecting, sending and reading
the whole answer — and all the calls of one turn by a turn budget, so a slow service costs at
most its deadline and never the call: a timeout or error is just another result the flow
branches on (or, for understanding, falls back to the built-in matchers on).

Hooks run while the service holds the call's lock and before the turn is stored: a retried
request gets the stored response and calls nothing again. Only when another replica wrote the
call meanwhile does the turn run afresh (and may call again); the `Idempotency-Key` header, the
same for every attempt of one hook in one turn, lets a service recognise that.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from urllib.parse import quote

import httpx

from dialogue.v1 import dialogue_pb2 as pb
from server.engine import interpreter
from server.engine.flow import Flow
from server.engine.hooks import HookCall, HookResult, Outcome
from server.engine.interpreter import Decision
from server.engine.state import CallState

_log = logging.getLogger("dialogue.hooks")

# All hooks of one turn together; gateways wait 500 ms by default for the whole decision.
DEFAULT_TURN_BUDGET_S = 2.0
# An answer is a small JSON object: anything bigger is a misbehaving service.
MAX_ANSWER_BYTES = 64 * 1024


class HookClient:
    """Posts hook payloads as JSON and reads JSON objects back, within deadlines.

    One client (and its connection pool) serves every call; it is made on first use, inside
    the event loop that uses it. Close it with `aclose`.
    """

    def __init__(
        self,
        *,
        turn_budget_s: float = DEFAULT_TURN_BUDGET_S,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.turn_budget_s = turn_budget_s
        self.max_answer_bytes = max_answer_bytes
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport,
                # Hooks are the operator's own services: no proxy from the environment, no
                # redirects to follow somewhere unexpected.
                trust_env=False,
                follow_redirects=False,
                headers={"User-Agent": "dialogue-server hooks"},
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
            )
        return self._client

    async def aclose(self) -> None:
        """Closes the connection pool; a later call opens a new one."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def call(self, hook: HookCall, budget_s: float) -> HookResult:
        """Performs one hook within min(its deadline, budget_s); never raises for its failure."""
        seconds = min(hook.timeout_ms / 1000, budget_s)
        if seconds <= 0:
            return HookResult(Outcome.TIMEOUT, detail="the turn's hook budget is spent")
        body = json.dumps(hook.payload, ensure_ascii=False, separators=(",", ":")).encode()
        # Header values are ASCII; call and request ids come from platforms and may not be.
        key = quote(hook.idempotency_key, safe=":/-_.@")
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        try:
            async with asyncio.timeout(seconds):
                status, raw = await self._post(hook.url, body, headers, seconds)
        except (TimeoutError, httpx.TimeoutException):
            return HookResult(Outcome.TIMEOUT, detail=f"no answer within {seconds * 1000:.0f} ms")
        except _TooLargeError:
            return HookResult(
                Outcome.ERROR, detail=f"answer longer than {self.max_answer_bytes} bytes"
            )
        except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            # Whatever goes wrong reaching the service is the flow's error path, not the call's.
            return HookResult(Outcome.ERROR, detail=f"{type(exc).__name__}: {exc}".strip(": "))
        if not 200 <= status < 300:
            return HookResult(Outcome.ERROR, detail=f"HTTP {status}")
        try:
            parsed = json.loads(raw)
        except ValueError:
            return HookResult(Outcome.ERROR, detail="the answer is not JSON")
        if not isinstance(parsed, dict):
            return HookResult(Outcome.ERROR, detail="the answer is not a JSON object")
        return HookResult(Outcome.OK, parsed)

    async def _post(
        self, url: str, body: bytes, headers: dict[str, str], seconds: float
    ) -> tuple[int, bytes]:
        # httpx's own timeouts bound each phase; asyncio.timeout above bounds the whole call.
        timeout = httpx.Timeout(seconds)
        async with self._http().stream(
            "POST", url, content=body, headers=headers, timeout=timeout
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_answer_bytes:
                    raise _TooLargeError
                chunks.append(chunk)
            return response.status_code, b"".join(chunks)


class _TooLargeError(Exception):
    """The answer went past MAX_ANSWER_BYTES."""


async def run_turn(
    client: HookClient,
    flow: Flow | None,
    state: CallState | None,
    request: pb.DecideNextActionRequest,
    now: datetime,
) -> Decision:
    """Decides a turn, performing the hooks it reaches one after another.

    Args:
        client: Performs the hooks.
        flow, state, request: As for `interpreter.decide`.
        now: The server's time, used when the request has no `occurred_at`.
    """
    loop = asyncio.get_running_loop()
    ends = loop.time() + client.turn_budget_s

    async def answer(hook: HookCall) -> HookResult:
        result = await client.call(hook, ends - loop.time())
        if result.outcome is not Outcome.OK:
            _log.warning(
                "%s hook of call %s at node %s (%s): %s %s",
                hook.kind,
                request.call.call_id,
                hook.node,
                hook.url,
                result.outcome.value,
                result.detail,
            )
        return result

    return await interpreter.run_turn(flow, state, request, answer, now=now)
