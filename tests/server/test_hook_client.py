"""HTTP hooks end to end: a real HTTP service on 127.0.0.1 (FastAPI under uvicorn, in the test's
event loop) behind the real gRPC DialogueService. Fulfillment success merges slots, a 500 or
invalid JSON takes on_error, a service slower than the node's deadline takes on_timeout, a
retried request replays without calling again, and the NLU hook falls back to the built-in
matchers whenever it cannot help.

Success paths get generous deadlines so a slow machine never turns them into timeouts; the slow
endpoint never answers until the test is over, so the timeout path needs no timing either.
"""

from __future__ import annotations

import asyncio
import json
import socket
import textwrap
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.catalog import Catalog
from server.engine.hooks import FULFILLMENT, HookCall, Outcome
from server.engine.loader import parse_flow
from server.hook_client import HookClient
from tests.support.grpc_server import Served, request, serve

GENEROUS_MS = 5000
SHORT_MS = 200


@dataclass
class Backend:
    """The HTTP service the hooks call, and what it saw."""

    base: str
    hits: Counter[str] = field(default_factory=Counter)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def _app(backend: Backend) -> FastAPI:
    app = FastAPI()

    async def seen(name: str, http: Request) -> dict[str, Any]:
        body: dict[str, Any] = await http.json()
        backend.hits[name] += 1
        backend.bodies.append(body)
        backend.headers.append(dict(http.headers))
        return body

    @app.post("/balance")
    async def balance(http: Request) -> dict[str, Any]:
        body = await seen("balance", http)
        return {
            "slots": {"balance": 42.5, "owner": body["slots"].get("name", "")},
            "params": {"vip": "1"},
        }

    @app.post("/fail")
    async def fail(http: Request) -> Response:
        await seen("fail", http)
        return JSONResponse({"error": "down"}, status_code=500)

    @app.post("/slow")
    async def slow(http: Request) -> dict[str, Any]:
        await seen("slow", http)
        # Answers only once the test is over: far beyond any deadline, with no sleeping.
        async with asyncio.timeout(30):
            await backend.release.wait()
        return {}

    @app.post("/garbage")
    async def garbage(http: Request) -> Response:
        await seen("garbage", http)
        return Response("<html>not json</html>", media_type="application/json")

    @app.post("/huge")
    async def huge(http: Request) -> Response:
        await seen("huge", http)
        return Response(json.dumps({"slots": {"x": "y" * 100_000}}), media_type="application/json")

    @app.post("/nlu")
    async def nlu(http: Request) -> dict[str, Any]:
        body = await seen("nlu", http)
        if "多少钱" in body["text"]:
            return {"intent": "bill", "slots": {"topic": "cost"}, "confidence": 0.92}
        return {"intent": "", "confidence": 0.1}

    return app


@asynccontextmanager
async def backend() -> AsyncIterator[Backend]:
    """Runs the HTTP service on a free loopback port until the block ends."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    served = Backend(f"http://127.0.0.1:{sock.getsockname()[1]}")
    config = uvicorn.Config(
        _app(served),
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(30):
            while not server.started and not task.done():
                await asyncio.sleep(0.01)
        if task.done():
            task.result()  # raises what stopped it
        yield served
    finally:
        served.release.set()
        server.should_exit = True
        async with asyncio.timeout(30):
            await task
        sock.close()


@asynccontextmanager
async def dialogue(flow_yaml: str) -> AsyncIterator[Served]:
    """The gRPC service with one inline flow, its hook client closed afterwards."""
    flow = parse_flow(textwrap.dedent(flow_yaml), "hooks.yaml")
    async with serve(catalog=Catalog({flow.id: flow}, {}, flow.id)) as served:
        try:
            yield served
        finally:
            await served.running.service.aclose()


def _fulfillment_flow(url: str, timeout_ms: int) -> str:
    return f"""
    flow: hooks
    version: "1"
    start: ask
    defaults: {{on_max_attempts: bye}}
    nodes:
      ask: {{type: collect, slot: name, slot_type: text, prompt: 贵姓, next: lookup}}
      lookup:
        type: fulfillment
        url: "{url}"
        timeout_ms: {timeout_ms}
        args: {{purpose: balance}}
        slots: [balance, owner]
        on_success: answer
        on_error: sorry
        on_timeout: slow
      answer: {{type: hangup, prompt: "{{owner}}的余额是{{balance}}元"}}
      sorry: {{type: hangup, prompt: 系统繁忙}}
      slow: {{type: hangup, prompt: 查询超时}}
      bye: {{type: hangup, prompt: 再见}}
    """


def _said(response: pb.DecideNextActionResponse) -> list[str]:
    return [item.tts.text for item in response.play_and_hang_up.prompts.items]


async def _answer(served: Served, text: str = "张三") -> pb.DecideNextActionResponse:
    await served.decide(request("c1", "r1", call_started={}))
    return await served.decide(request("c1", "r2", speech_recognized={"text": text}))


async def test_a_successful_fulfillment_merges_its_values_into_the_call() -> None:
    async with (
        backend() as http,
        dialogue(_fulfillment_flow(f"{http.base}/balance", GENEROUS_MS)) as served,
    ):
        answer = await _answer(served)
        assert _said(answer) == ["张三的余额是42.5元"]
        assert "lookup: ok" in answer.diagnostics.note
        call = await served.stub.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert dict(call.call.slots) == {"name": "张三", "balance": "42.5", "owner": "张三"}
    assert http.hits == Counter({"balance": 1})
    sent = http.bodies[0]
    assert sent["kind"] == FULFILLMENT
    assert sent["node"] == "lookup"
    assert sent["call"]["id"] == "c1"
    assert sent["call"]["request_id"] == "r2"
    assert sent["slots"] == {"name": "张三"}
    assert sent["args"] == {"purpose": "balance"}
    assert http.headers[0]["idempotency-key"] == "c1:r2:lookup"
    assert http.headers[0]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "node_prompt", "note"),
    [
        ("/fail", "系统繁忙", "lookup: failed (HTTP 500)"),
        ("/garbage", "系统繁忙", "lookup: failed (the answer is not JSON)"),
        ("/huge", "系统繁忙", "answer longer than 65536 bytes"),
    ],
)
async def test_a_failing_service_takes_on_error(path: str, node_prompt: str, note: str) -> None:
    async with (
        backend() as http,
        dialogue(_fulfillment_flow(http.base + path, GENEROUS_MS)) as served,
    ):
        answer = await _answer(served)
        assert _said(answer) == [node_prompt]
        assert note in answer.diagnostics.note


async def test_a_service_slower_than_the_deadline_takes_on_timeout() -> None:
    async with (
        backend() as http,
        dialogue(_fulfillment_flow(f"{http.base}/slow", SHORT_MS)) as served,
    ):
        answer = await _answer(served)
        assert _said(answer) == ["查询超时"]
        assert f"lookup: timed out (no answer within {SHORT_MS} ms)" in answer.diagnostics.note
        assert http.hits == Counter({"slow": 1})


async def test_a_service_that_is_not_there_takes_on_error() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nobody listens there now: the connection is refused
    async with dialogue(_fulfillment_flow(f"http://127.0.0.1:{port}/x", GENEROUS_MS)) as served:
        answer = await _answer(served)
        assert _said(answer) == ["系统繁忙"]
        assert "ConnectError" in answer.diagnostics.note


async def test_a_retried_request_replays_the_stored_answer_without_calling_again() -> None:
    async with (
        backend() as http,
        dialogue(_fulfillment_flow(f"{http.base}/balance", GENEROUS_MS)) as served,
    ):
        await served.decide(request("c1", "r1", call_started={}))
        event = request("c1", "r2", speech_recognized={"text": "张三"})
        first = await served.decide_raw(event)
        again = await served.decide_raw(event)
        assert first == again
        call = await served.stub.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert call.call.turn_count == 2
    assert http.hits == Counter({"balance": 1})


_NLU_FLOW = """
flow: nlu
version: "1"
start: main
nlu: {{url: "{url}", timeout_ms: {timeout_ms}}}
defaults: {{on_max_attempts: bye}}
nodes:
  main:
    type: menu
    prompt: 请问您要办理什么业务
    choices:
      - {{intent: bill, key: "1", keywords: [话费], next: bill}}
      - {{intent: data, key: "2", keywords: [流量], next: data}}
  bill: {{type: hangup, prompt: 话费}}
  data: {{type: hangup, prompt: 流量}}
  bye: {{type: hangup, prompt: 再见}}
"""


async def _menu(served: Served, text: str) -> pb.DecideNextActionResponse:
    await served.decide(request("c1", "r1", call_started={}))
    return await served.decide(request("c1", "r2", speech_recognized={"text": text}))


async def test_the_nlu_understands_what_the_keywords_cannot() -> None:
    flow = _NLU_FLOW.format(url="{base}/nlu", timeout_ms=GENEROUS_MS)
    async with backend() as http, dialogue(flow.replace("{base}", http.base)) as served:
        answer = await _menu(served, "这个月我花了多少钱")
        assert _said(answer) == ["话费"]
        assert answer.diagnostics.matched_intent == "bill"
        assert "chose 'bill' by nlu 0.92" in answer.diagnostics.note
        call = await served.stub.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert dict(call.call.slots) == {"topic": "cost"}
    assert http.bodies[0]["text"] == "这个月我花了多少钱"
    assert http.bodies[0]["node"] == "main"
    assert http.bodies[0]["expected"] == {"intents": ["bill", "data"]}


@pytest.mark.parametrize(
    ("path", "timeout_ms", "note"),
    [
        ("/nlu", GENEROUS_MS, "nlu '' at 0.1 is below 0.5"),
        ("/fail", GENEROUS_MS, "nlu failed (HTTP 500)"),
        ("/garbage", GENEROUS_MS, "nlu failed (the answer is not JSON)"),
        ("/slow", SHORT_MS, f"nlu failed (no answer within {SHORT_MS} ms)"),
    ],
)
async def test_without_the_nlu_the_built_in_matchers_decide(
    path: str, timeout_ms: int, note: str
) -> None:
    flow = _NLU_FLOW.format(url="{base}" + path, timeout_ms=timeout_ms)
    async with backend() as http, dialogue(flow.replace("{base}", http.base)) as served:
        answer = await _menu(served, "我要查流量")
        assert _said(answer) == ["流量"]
        assert note in answer.diagnostics.note
        assert "chose 'data' by voice (keyword '流量')" in answer.diagnostics.note


async def test_the_turn_budget_bounds_all_hooks_of_a_turn() -> None:
    async with backend() as http:
        client = HookClient(turn_budget_s=0.2)
        try:
            hook = HookCall(FULFILLMENT, "n", f"{http.base}/balance", {"slots": {}}, 5000, "k")
            spent = await client.call(hook, budget_s=0)
            assert (spent.outcome, spent.detail) == (
                Outcome.TIMEOUT,
                "the turn's hook budget is spent",
            )
            slow = HookCall(FULFILLMENT, "n", f"{http.base}/slow", {}, 5000, "k")
            bounded = await client.call(slow, budget_s=client.turn_budget_s)
            assert bounded.outcome is Outcome.TIMEOUT
            assert bounded.detail == "no answer within 200 ms"
        finally:
            await client.aclose()
    assert http.hits == Counter({"slow": 1})
