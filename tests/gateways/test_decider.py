"""The gateway's client of the server: retries on another replica, waits for a server coming
back, and falls back only when the deadline is spent — against real gRPC servers on loopback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateways.decider import MAX_ATTEMPTS, RETRYABLE_CODES, Decider, channel_options
from gateways.fallback import FallbackPolicy
from server.app import create_server
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.store import open_store
from tests.support.grpc_server import request, serve
from tests.support.ports import free_port

_POLICY = FallbackPolicy(skill_queue="9999")
CALLS = 20


@pytest.mark.parametrize("deadline_s", [0.05, 0.5, 2.0, 30.0])
def test_backoffs_fit_the_deadline(deadline_s: float) -> None:
    options = dict(channel_options(deadline_s))
    ceiling = int(options["grpc.max_reconnect_backoff_ms"])
    assert int(options["grpc.initial_reconnect_backoff_ms"]) <= ceiling <= 2000
    assert ceiling <= max(100, deadline_s * 1000 / 2)
    (method,) = json.loads(str(options["grpc.service_config"]))["methodConfig"]
    retry = method["retryPolicy"]
    assert method["waitForReady"] is True
    assert retry["maxAttempts"] == MAX_ATTEMPTS
    assert retry["retryableStatusCodes"] == list(RETRYABLE_CODES)
    # Every backoff but the first could still leave room for an attempt inside the deadline.
    assert float(retry["maxBackoff"].rstrip("s")) * (MAX_ATTEMPTS - 1) <= max(deadline_s, 0.04)


async def test_a_replica_that_died_costs_no_call(tmp_path: Path) -> None:
    database = f"sqlite://{tmp_path / 'calls.db'}"
    async with serve(database) as alive, serve(database) as doomed:
        target = f"ipv4:127.0.0.1:{alive.running.port},127.0.0.1:{doomed.running.port}"
        decider = Decider(target, 30.0, _POLICY)
        try:
            first = [
                await decider.decide(request(f"c{n}", "r1", call_started={})) for n in range(4)
            ]
            await doomed.running.server.stop(None)
            later = [
                await decider.decide(request(f"c{n}", "r2", digits_entered={"digits": "1"}))
                for n in range(CALLS)
            ]
        finally:
            await decider.close()
    assert not any(outcome.is_fallback for outcome in first + later)
    assert decider.fallbacks == {}


async def test_a_call_waits_for_a_server_that_comes_back(tmp_path: Path) -> None:
    port = free_port()
    decider = Decider(f"127.0.0.1:{port}", 60.0, _POLICY)
    store = open_store("memory://")
    try:
        # The call starts while nothing listens, so the channel is in its reconnect backoff
        # when the server appears; it must still get the real answer, not the fallback.
        pending = asyncio.ensure_future(decider.decide(request("c1", "r1", call_started={})))
        await asyncio.sleep(0.3)
        assert not pending.done()
        running = await create_server(f"127.0.0.1:{port}", load_catalog(DEMO_FLOWS), store)
        try:
            outcome = await pending
        finally:
            await running.server.stop(None)
    finally:
        await decider.close()
        await store.close()
    assert not outcome.is_fallback
    assert decider.fallbacks == {}
