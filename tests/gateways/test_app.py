"""The shared HTTP layer and decider against a real server: health, readiness, fallbacks."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from dialogue.v1 import dialogue_pb2 as pb
from gateways.app import create_app, direct_routes, query_fields
from gateways.decider import Decider
from gateways.fallback import FallbackPolicy
from tests.support.gateway import serve_app
from tests.support.grpc_server import request, serve
from tests.support.ports import closed_port_address

_POLICY = FallbackPolicy(skill_queue="9999")


@contextlib.asynccontextmanager
async def _bare_gateway(server_address: str) -> AsyncIterator[httpx.AsyncClient]:
    decider = Decider(server_address, 2.0, _POLICY)
    app = create_app("test", decider, APIRouter())
    async with serve_app(app) as client:
        yield client


async def test_healthz_and_readyz_with_the_server_up() -> None:
    async with serve() as served, _bare_gateway(f"127.0.0.1:{served.running.port}") as client:
        assert (await client.get("/healthz")).json() == {"status": "ok", "vendor": "test"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"


async def test_readyz_says_not_ready_when_the_server_is_down() -> None:
    async with _bare_gateway(closed_port_address()) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "server unreachable"


async def test_a_dead_server_gives_the_fallback_and_counts_it() -> None:
    decider = Decider(closed_port_address(), 2.0, _POLICY)
    try:
        outcome = await decider.decide(request("c1", "r1", call_started={}))
    finally:
        await decider.close()
    assert outcome.fallback_reason == "UNAVAILABLE"
    assert outcome.response.play_and_transfer.transfer.skill_queue.access_code == "9999"
    assert decider.fallbacks == {"UNAVAILABLE": 1}


async def test_a_server_slower_than_the_deadline_gives_the_fallback(tmp_path: Path) -> None:
    database = tmp_path / "calls.db"
    async with serve(f"sqlite://{database}") as served:
        await served.decide(request("warm", "r0", call_started={}))
        # Another writer holds the database: the server waits on SQLite's busy timeout, far
        # longer than the gateway's deadline — a real slow dependency, not a sleep.
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        decider = Decider(f"127.0.0.1:{served.running.port}", 0.2, _POLICY)
        try:
            outcome = await decider.decide(request("c1", "r1", call_started={}))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
            await decider.close()
    assert outcome.fallback_reason == "DEADLINE_EXCEEDED"
    assert outcome.response.WhichOneof("action") == "play_and_transfer"


async def test_a_server_error_gives_the_fallback() -> None:
    async with serve() as served:
        decider = Decider(f"127.0.0.1:{served.running.port}", 2.0, _POLICY)
        try:
            outcome = await decider.decide(pb.DecideNextActionRequest(call=pb.Call(call_id="c1")))
        finally:
            await decider.close()
    assert outcome.fallback_reason == "INVALID_ARGUMENT"


async def test_health_sees_a_store_failure_even_when_the_gateway_gave_up_first(
    tmp_path: Path,
) -> None:
    database = tmp_path / "calls.db"
    async with serve(f"sqlite://{database}") as served:
        await served.decide(request("warm", "r0", call_started={}))
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        decider = Decider(f"127.0.0.1:{served.running.port}", 0.2, _POLICY)
        try:
            outcome = await decider.decide(request("c1", "r1", call_started={}))
            assert outcome.fallback_reason == "DEADLINE_EXCEEDED"
            # The server keeps waiting on the lock after the gateway left; when its busy timeout
            # fails the write, health must say so (bounded wait, no timing asserted).
            async with asyncio.timeout(60):
                while await decider.ready():
                    await asyncio.sleep(0.1)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        recovered = await decider.decide(request("c2", "r1", call_started={}))
        await decider.close()
    assert not recovered.is_fallback


# -- the direct dispatch of callback routes ------------------------------------------------------


def _routes() -> APIRouter:
    router = APIRouter()

    @router.api_route("/callback", methods=["GET", "POST"])
    async def callback(request: Request) -> Response:
        route = request.scope["route"]
        return JSONResponse({"route": route.path, "query": dict(request.query_params)})

    @router.post("/things/{name}")
    async def thing(request: Request, name: str) -> Response:
        return JSONResponse({"name": name})

    @router.get("/counters")
    async def counters() -> dict[str, int]:
        return {"answered": 1}

    @router.post("/broken")
    async def broken(request: Request) -> Response:
        raise RuntimeError("a bug")

    @router.get("/blocking")
    def blocking(request: Request) -> Response:  # FastAPI runs it in a thread
        return JSONResponse({"thread": True})

    return router


def test_only_fixed_paths_taking_the_request_and_answering_a_response_are_direct() -> None:
    assert set(direct_routes(_routes())) == {
        ("/callback", "GET"),
        ("/callback", "POST"),
        ("/broken", "POST"),
    }


async def test_direct_routes_answer_as_fastapi_would_and_keep_the_route_label() -> None:
    decider = Decider(closed_port_address(), 2.0, _POLICY)
    app = create_app("test", decider, _routes())
    async with serve_app(app) as client:
        direct = await client.get("/callback", params={"a": "1"})
        assert direct.json() == {"route": "/callback", "query": {"a": "1"}}
        # The rest is FastAPI's: path parameters, serialised answers, 404 and 405.
        assert (await client.post("/things/x")).json() == {"name": "x"}
        assert (await client.get("/counters")).json() == {"answered": 1}
        assert (await client.get("/nowhere")).status_code == 404
        assert (await client.put("/callback")).status_code == 405
        # A bug in a direct route is a 500, as behind FastAPI's handler.
        assert (await client.post("/broken")).status_code == 500
        assert (await client.get("/blocking")).json() == {"thread": True}
        scraped = (await client.get("/metrics")).text
    assert '{method="GET",route="/callback",status="200",vendor="test"}' in scraped
    assert '{method="POST",route="/broken",status="500",vendor="test"}' in scraped


# Query text as vendors and attackers send it: separators, escapes (valid, truncated, of
# invalid UTF-8), '+', non-ASCII (Latin-1 bytes on the wire) and empty parts.
_QUERY_PIECES = st.sampled_from(
    [
        "&",
        "=",
        "+",
        "%",
        "%2",
        "%20",
        "%2B",
        "%26",
        "%3D",
        "%E6%88%91",
        "%E6%88",
        "%ff",
        "a",
        "Z",
        "call_id",
        "content",
        "é",
        " ",
        ";",
        "%25",
    ]
)


@given(st.lists(_QUERY_PIECES, max_size=24).map("".join))
def test_query_fields_are_what_starlette_parses(query: str) -> None:
    raw = query.encode("latin-1")
    assert query_fields(raw) == dict(QueryParams(raw))


def test_query_fields_decode_escapes_and_keep_the_last_of_a_repeated_name() -> None:
    raw = b"Utterance=%E6%88%91+%E6%83%B3&a=1&a=2&blank=&bare"
    assert query_fields(raw) == {"Utterance": "我 想", "a": "2", "blank": "", "bare": ""}
