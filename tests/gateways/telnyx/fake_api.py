"""A fake Telnyx Call Control API on 127.0.0.1: records, validates and (mostly) accepts commands.

Served by uvicorn on a free port. Like Telnyx it checks `Authorization: Bearer <key>`, answers
`{"data": {"result": "ok"}}`, ignores a command whose `command_id` it has already executed on
the same call, and refuses commands on a call that was hung up with 90018. Unlike Telnyx it
validates every body against the request schema in Telnyx's OpenAPI spec (spec.py) and
answers 422 (code 10015) when a body does not conform, recording the problem so tests can
assert there were none. Tests can script failures: `fail_next(2, status=503)`,
`fail_next(1, status=422, code="90018")`, or slow answers with `delay_next`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.gateways.telnyx import spec
from tests.support.gateway import QuietServer

API_KEY = "KEYtest_0123456789abcdef"
_STARTUP_BOUND_S = 30.0


@dataclass(frozen=True, slots=True)
class Received:
    """One request the fake got, whatever it answered.

    Attributes:
        call_control_id: From the path.
        command: From the path (e.g. "speak").
        body: The JSON body (None when it was not JSON).
        status: What the fake answered.
        executed: True when this request executed the command (first acceptance).
        raw_path: The request path as sent (before any percent-decoding).
    """

    call_control_id: str
    command: str
    body: Any
    status: int
    executed: bool
    raw_path: str = ""

    @property
    def command_id(self) -> str:
        return str(self.body.get("command_id", "")) if isinstance(self.body, dict) else ""


@dataclass
class _Failure:
    status: int
    code: str
    command: str | None


@dataclass
class FakeTelnyx:
    """The fake API's state; `base_url` is set while served."""

    api_key: str = API_KEY
    received: list[Received] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    base_url: str = ""
    _failures: deque[_Failure] = field(default_factory=deque)
    _delays: deque[float] = field(default_factory=deque)
    _ended: set[str] = field(default_factory=set)
    _executed_ids: set[tuple[str, str]] = field(default_factory=set)
    _transcribing: set[str] = field(default_factory=set)
    _assistants: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def executed(self) -> list[Received]:
        """The commands executed, in order (each command_id at most once per call)."""
        return [r for r in self.received if r.executed]

    def executed_on(self, call_control_id: str) -> list[Received]:
        return [r for r in self.executed if r.call_control_id == call_control_id]

    def fail_next(
        self, count: int = 1, *, status: int = 503, code: str = "", command: str | None = None
    ) -> None:
        """The next `count` requests (of `command`, or any) are answered `status` with `code`."""
        for _ in range(count):
            self._failures.append(_Failure(status, code, command))

    def delay_next(self, seconds: float) -> None:
        """The next request is answered only after `seconds`."""
        self._delays.append(seconds)

    def end_conversation(self, call_control_id: str) -> None:
        """The assistant on the call ended its conversation (call.conversation.ended follows)."""
        self._assistants.discard(call_control_id)

    def hang_up(self, call_control_id: str) -> None:
        """The call has ended: later commands on it are refused with 90018."""
        self._ended.add(call_control_id)

    async def wait_for(self, predicate: Any, bound_s: float = 30.0) -> None:
        """Waits until predicate(self) holds; the bound only keeps a broken test from hanging."""
        async with asyncio.timeout(bound_s):
            while not predicate(self):
                self.changed.clear()
                if predicate(self):
                    return
                await self.changed.wait()

    def app(self) -> FastAPI:
        app = FastAPI(title="fake Telnyx Call Control")

        @app.post("/v2/calls/{call_control_id}/actions/{command}")
        async def act(call_control_id: str, command: str, request: Request) -> Response:
            if self._delays:
                await asyncio.sleep(self._delays.popleft())
            raw = await request.body()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = None
            status, answer, executed = self._answer(call_control_id, command, request, body)
            raw_path = bytes(request.scope.get("raw_path") or b"").decode("latin-1")
            self.received.append(
                Received(call_control_id, command, body, status, executed, raw_path)
            )
            self.changed.set()
            return JSONResponse(answer, status_code=status)

        return app

    def _answer(
        self, call_control_id: str, command: str, request: Request, body: Any
    ) -> tuple[int, dict[str, Any], bool]:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, _errors("10009", "Authentication failed"), False
        problems = (
            spec.command_problems(command, body)
            if isinstance(body, dict)
            else [f"{command}: the body is not a JSON object"]
        )
        if problems:
            self.problems.extend(problems)
            return 422, _errors("10015", "Invalid parameter", "; ".join(problems)), False
        failure = self._next_failure(command)
        if failure is not None:
            return failure.status, _errors(failure.code or "10010", "Scripted failure"), False
        if call_control_id in self._ended:
            return 422, _errors("90018", "Call has already ended"), False
        key = (call_control_id, str(body.get("command_id", "")))
        if key[1] and key in self._executed_ids:
            # Telnyx ignores a command_id it has seen on the call: success, nothing happens.
            return 200, {"data": {"result": "ok"}}, False
        if key[1]:
            self._executed_ids.add(key)
        if command == "transcription_start":
            if call_control_id in self._transcribing:
                return 422, _errors("90054", "Transcription already started"), False
            self._transcribing.add(call_control_id)
        if command == "transcription_stop":
            self._transcribing.discard(call_control_id)
        if command == "ai_assistant_start":
            if call_control_id in self._assistants:
                return 422, _errors("90061", "An assistant is already running"), False
            self._assistants.add(call_control_id)
        if command == "ai_assistant_stop":
            self._assistants.discard(call_control_id)
        if command == "hangup":
            self._ended.add(call_control_id)
        return 200, {"data": {"result": "ok"}}, True

    def _next_failure(self, command: str) -> _Failure | None:
        for failure in list(self._failures):
            if failure.command in (None, command):
                self._failures.remove(failure)
                return failure
        return None


def _errors(code: str, title: str, detail: str = "") -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "title": title}
    if detail:
        error["detail"] = detail
    return {"errors": [error]}


@contextlib.asynccontextmanager
async def serve_fake(fake: FakeTelnyx | None = None) -> AsyncIterator[FakeTelnyx]:
    """Serves a fake Telnyx API on a free 127.0.0.1 port; `fake.base_url` ends in /v2."""
    fake = fake or FakeTelnyx()
    server = QuietServer(
        uvicorn.Config(fake.app(), host="127.0.0.1", port=0, log_config=None, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(_STARTUP_BOUND_S):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    fake.base_url = f"http://127.0.0.1:{port}/v2"
    try:
        yield fake
    finally:
        server.should_exit = True
        await task
