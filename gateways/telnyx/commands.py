"""The Call Control client: sends planned commands to Telnyx, once each, with bounded retries.

Transport is the official SDK (`telnyx.AsyncTelnyx`): its auth header, base URL handling and
typed errors. Two choices keep the SDK from working against the gateway:

- `max_retries=0`: the SDK would retry 408/409/429/5xx twice with its own backoff, multiplying
  with ours and hiding the attempt count; here one loop owns retries, bounded in count and time.
- the generic `client.post(path, body=…)` rather than the typed per-command methods: the
  mapping plans each body as the JSON Telnyx documents (and the tests validate against the
  OpenAPI spec), and the typed methods rename fields (`from` is `from_`) and would need one
  dispatch per command. What is validated is exactly what is sent.

The SDK's httpx client is the one `transport.call_control_http_client` makes: the SDK's own
settings, with a cheaper check of idle keep-alive connections (see there).

Exactly once: every body carries a `command_id` derived from the webhook, which Telnyx dedupes
per call; on top of that, this client remembers the ids it got accepted (bounded) and joins a
command already in flight, so a redelivered webhook does not even reach the API twice.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx
import telnyx

from gateways.telnyx.transport import call_control_http_client
from gateways.telnyx.values import Command

__all__ = ["CALL_ENDED_CODE", "CallControl", "Result", "RetryPolicy"]

CALL_ENDED_CODE: Final = "90018"
"""Telnyx's error code for a command on a call that has already ended."""

# Statuses worth another attempt: Telnyx or a proxy was busy or failed, not the request.
_TRANSIENT_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_REMEMBERED_COMMANDS = 10_000
_SEGMENT_SAFE = "!$&'()*+,;=:@"
# Failure codes become metric labels: only short numeric codes, and only so many distinct ones.
_CODE = re.compile(r"^[0-9]{1,8}$")
_MAX_FAILURE_KINDS = 64

_log = logging.getLogger("dialogue.gateway.telnyx.commands")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one command.

    Attributes:
        attempts: Most attempts per command (the first included).
        attempt_timeout_s: How long one attempt may take.
        first_backoff_s: Wait before the second attempt; doubled each time after.
        max_backoff_s: The longest wait between attempts.
        budget_s: The longest time for all attempts and waits of one command together.
    """

    attempts: int = 4
    attempt_timeout_s: float = 2.0
    first_backoff_s: float = 0.1
    max_backoff_s: float = 1.0
    budget_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Result:
    """How one command went.

    Attributes:
        name: The command (e.g. "speak").
        command_id: Its command_id.
        status: "ok" (Telnyx accepted it, or it had been accepted before), "call_ended"
            (90018: nothing left to do), "refused" (another 4xx: not retried), or "failed"
            (5xx, timeouts or network errors until the attempts or the budget ran out).
        attempts: Requests made for it this time (0 when it had been accepted before).
        http_status: The last HTTP status; None when no response came.
        code: Telnyx's error code of the last failure, when it gave one.
        detail: What went wrong, for logs.
    """

    name: str
    command_id: str
    status: str
    attempts: int = 1
    http_status: int | None = None
    code: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class CallControl:
    """Sends commands to `POST {base_url}/calls/{call_control_id}/actions/{command}`.

    `counters` counts what happened, by outcome (`accepted`, `deduplicated`, `retried`,
    `call_ended`, `refused`, `failed`); the routes expose it. `failures` counts the commands
    that did not go through by (outcome, code): Telnyx's error code, `http_STATUS` without
    one, `no_response` when none came (exposed as Prometheus metrics).
    """

    def __init__(
        self,
        api_key: str,
        base_url: str,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.counters: Counter[str] = Counter()
        self.failures: Counter[tuple[str, str]] = Counter()
        self._sleep = sleep
        self._clock = clock
        self._client = telnyx.AsyncTelnyx(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=self.policy.attempt_timeout_s,
            http_client=call_control_http_client(self.policy.attempt_timeout_s),
        )
        self._accepted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._in_flight: dict[tuple[str, str], asyncio.Future[Result]] = {}

    async def execute(
        self,
        call_control_id: str,
        commands: Sequence[Command],
        optional: frozenset[str] = frozenset(),
    ) -> list[Result]:
        """Sends the commands in order; stops at the first that does not go through.

        Later commands assume the earlier ones happened (the prompt before the gather), so they
        are not sent after a failure; a refusal of an `optional` command (its refusal leaves
        the plan valid) does not stop them.
        """
        results: list[Result] = []
        for name, body in commands:
            result = await self.send(call_control_id, name, body)
            results.append(result)
            if not result.ok and not (result.status == "refused" and name in optional):
                break
        return results

    async def send(self, call_control_id: str, name: str, body: dict[str, Any]) -> Result:
        """Sends one command (at most once per command_id and call while remembered)."""
        cid = str(body.get("command_id", ""))
        key = (call_control_id, cid)
        if cid and key in self._accepted:
            self.counters["deduplicated"] += 1
            return Result(name, cid, "ok", attempts=0, detail="accepted before")
        if cid and key in self._in_flight:
            self.counters["deduplicated"] += 1
            return await asyncio.shield(self._in_flight[key])
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        if cid:
            self._in_flight[key] = future
        try:
            result = await self._send(call_control_id, name, cid, body)
        except BaseException as error:
            # Cancelled (shutdown) or a bug: whoever joined this command hears the same.
            future.set_exception(error)
            future.exception()  # marks it retrieved: nobody may be waiting
            raise
        else:
            future.set_result(result)
        finally:
            self._in_flight.pop(key, None)
        if result.ok and cid:
            self._remember(key)
        return result

    async def close(self) -> None:
        await self._client.close()

    async def _send(
        self, call_control_id: str, name: str, cid: str, body: dict[str, Any]
    ) -> Result:
        policy = self.policy
        # Quoted as the official SDK quotes a path segment (telnyx._utils._path): `/` escaped,
        # the `:` of a v3: call_control_id kept literal.
        path = f"/calls/{quote(call_control_id, safe=_SEGMENT_SAFE)}/actions/{name}"
        started = self._clock()
        attempt = 0
        last = Result(name, cid, "failed", attempts=0, detail="not sent")
        while attempt < max(policy.attempts, 1):
            remaining = policy.budget_s - (self._clock() - started)
            if attempt and remaining <= 0:
                break
            attempt += 1
            timeout = max(min(policy.attempt_timeout_s, remaining), 0.001)
            verdict, http_status, code, detail = await self._attempt(path, body, timeout)
            last = Result(name, cid, verdict, attempt, http_status, code, detail)
            if verdict != "retry":
                break
            backoff = min(policy.first_backoff_s * 2 ** (attempt - 1), policy.max_backoff_s)
            if attempt >= policy.attempts or self._clock() - started + backoff >= policy.budget_s:
                break
            self.counters["retried"] += 1
            _log.info(
                "retrying %s %s on %s in %.2fs (attempt %d: %s)",
                name,
                cid,
                call_control_id,
                backoff,
                attempt,
                last.detail,
            )
            await self._sleep(backoff)
        if last.status == "retry":
            last = Result(name, cid, "failed", attempt, last.http_status, last.code, last.detail)
        self._count_and_log(call_control_id, last)
        return last

    async def _attempt(
        self, path: str, body: dict[str, Any], timeout: float
    ) -> tuple[str, int | None, str, str]:
        """One request: (verdict, HTTP status, Telnyx error code, detail); verdict "retry" when
        another attempt may succeed."""
        try:
            await self._client.post(
                path, body=body, cast_to=httpx.Response, options={"timeout": timeout}
            )
        except telnyx.APIStatusError as error:
            code, detail = _error_of(error.body)
            status = error.status_code
            if code == CALL_ENDED_CODE:
                verdict = "call_ended"
            elif status in _TRANSIENT_STATUSES:
                verdict = "retry"
            else:
                verdict = "refused"
            return verdict, status, code, detail or str(status)
        except telnyx.APIConnectionError as error:  # timeouts included
            return "retry", None, "", type(error).__name__
        return "ok", 200, "", ""

    def _count_and_log(self, call_control_id: str, result: Result) -> None:
        outcome = "accepted" if result.ok else result.status
        self.counters[outcome] += 1
        if not result.ok:
            kind = (outcome, _failure_code(result))
            if kind in self.failures or len(self.failures) < _MAX_FAILURE_KINDS:
                self.failures[kind] += 1
            else:
                self.failures[(outcome, "other")] += 1
        if result.ok:
            _log.debug("%s %s accepted on %s", result.name, result.command_id, call_control_id)
        elif result.status == "call_ended":
            _log.info(
                "%s on %s: the call has already ended (%s)",
                result.name,
                call_control_id,
                result.code,
            )
        else:
            _log.warning(
                "%s %s on %s %s after %d attempt(s): HTTP %s %s %s",
                result.name,
                result.command_id,
                call_control_id,
                result.status,
                result.attempts,
                result.http_status,
                result.code,
                result.detail,
            )

    def _remember(self, key: tuple[str, str]) -> None:
        self._accepted[key] = None
        while len(self._accepted) > _REMEMBERED_COMMANDS:
            self._accepted.popitem(last=False)


def _failure_code(result: Result) -> str:
    if _CODE.match(result.code):
        return result.code
    return f"http_{result.http_status}" if result.http_status else "no_response"


def _error_of(body: object) -> tuple[str, str]:
    """Telnyx's error code and text from `{"errors": [{"code", "title", "detail"}]}`."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = first.get("code")
            text = first.get("detail") or first.get("title") or ""
            return (str(code) if code is not None else ""), str(text)
    return "", ""
