"""Fault drills: what callers get while a dependency fails, and that everything recovers by
itself once it is back — no restart of anything.

- the server down (nothing listens), then started on that address;
- the server slower than the gateways' deadline (an exclusive lock on its SQLite file);
- Redis down (terminated), then started again on the same port;
- the Telnyx Call Control API answering 5xx, timing out, or refusing with 422.

Every gateway answers in its own format with the fallback while the fault lasts; the server
answers UNAVAILABLE quickly and its health turns NOT_SERVING; afterwards answers are the real
decisions again and health is SERVING. Nothing here times a duration: waits are bounded only so
that a broken build cannot hang the run.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dialogue.v1 import dialogue_pb2 as pb
from gateways.telnyx import client_state as telnyx_client_state
from tests.gateways.telnyx.fake_api import serve_fake
from tests.gateways.telnyx.harness import gateway_env, serve_telnyx, signed_headers, webhook
from tests.hardening.probes import BUSY, WELCOME, Probe, gateways
from tests.hardening.stack import VENDORS
from tests.support.grpc_server import Served, request, serve
from tests.support.ports import closed_port_address, free_port
from tests.support.redis_server import start_redis
from tests.support.server_process import start_server

T = TypeVar("T")
# Bounds of the waits for a recovery: generous, they only stop a broken build from hanging.
RECOVERY_BOUND_S = 60.0
_POLL_S = 0.2
SERVICE = "dialogue.v1.DialogueService"


async def eventually(check: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Polls check until it returns a value; fails after RECOVERY_BOUND_S."""
    deadline = time.monotonic() + RECOVERY_BOUND_S
    while True:
        value = await check()
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"no recovery: {what}"
        await asyncio.sleep(_POLL_S)


async def health_of(served: Served) -> int:
    stub = health_pb2_grpc.HealthStub(served.channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=30)
    status: int = reply.status
    return status


async def all_recovered(probes: Callable[[str], Awaitable[dict[str, Probe]]]) -> None:
    """Waits until every gateway answers a new call with the real decision."""
    attempt = 0

    async def check() -> bool | None:
        nonlocal attempt
        attempt += 1
        answers = await probes(f"recovered-{attempt}")
        return True if all(not probe.fallback for probe in answers.values()) else None

    await eventually(check, "every gateway answering real decisions again")


# -- the server down ----------------------------------------------------------------------------


async def test_server_down_then_started_every_gateway_falls_back_then_recovers() -> None:
    address = closed_port_address()
    async with gateways(address, deadline_s=0.5) as front:
        down = await front.probe_all("down")
        for vendor in VENDORS:
            assert down[vendor].status == 200, vendor
            assert down[vendor].fallback, (vendor, down[vendor].spoken)
        # The server comes up on the address the gateways use; nothing else is restarted.
        with start_server("--listen", address, "--store", "memory://"):
            await all_recovered(front.probe_all)
            again = await front.probe_all("up")
        assert all(WELCOME in probe.spoken for probe in again.values()), again
    assert front.fake.problems == []


# -- the server slower than the deadline --------------------------------------------------------


async def test_server_slower_than_the_deadline_falls_back_and_health_flips_and_recovers(
    tmp_path: Path,
) -> None:
    database = tmp_path / "calls.db"
    async with serve(f"sqlite://{database}") as served:
        await served.decide(request("warm", "r0", call_started={}))
        async with gateways(f"127.0.0.1:{served.running.port}", deadline_s=0.3) as front:
            # Another writer holds the database: the server waits on SQLite's busy timeout,
            # far longer than the gateways' deadline — a real slow dependency, not a sleep.
            blocker = sqlite3.connect(database, isolation_level=None)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                slow = await front.probe_all("slow")
                for vendor in VENDORS:
                    assert (slow[vendor].status, slow[vendor].fallback) == (200, True), vendor
                # The gateways gave up long before SQLite's busy timeout, so the server never
                # saw the store fail (their RPCs were cancelled first). A client that waits
                # longer gets UNAVAILABLE once the busy timeout passes, and health flips.
                with pytest.raises(grpc.aio.AioRpcError) as locked:
                    await served.decide(request("patient", "r1", call_started={}))
                assert locked.value.code() == grpc.StatusCode.UNAVAILABLE
                assert await health_of(served) == health_pb2.HealthCheckResponse.NOT_SERVING
            finally:
                blocker.execute("ROLLBACK")
                blocker.close()
            await all_recovered(front.probe_all)
            await eventually(
                lambda: _when(health_of(served), health_pb2.HealthCheckResponse.SERVING),
                "health SERVING once the lock is gone",
            )


async def _when(value: Awaitable[int], expected: int) -> bool | None:
    return True if await value == expected else None


# -- Redis down and back ------------------------------------------------------------------------


async def test_redis_down_then_back_on_the_same_port_everything_recovers(tmp_path: Path) -> None:
    port = free_port()
    # Durable, so the Redis that comes back on the same port has the calls from before.
    first = start_redis(tmp_path, port=port, durable=True)
    first.__enter__()
    try:
        async with serve(f"redis://127.0.0.1:{port}/0") as served:
            await served.decide(request("before", "r1", call_started={}))
            async with gateways(f"127.0.0.1:{served.running.port}", deadline_s=2.0) as front:
                first.__exit__(None, None, None)
                # Down: the server says so at once, and every gateway falls back in format.
                with pytest.raises(grpc.aio.AioRpcError) as down:
                    await served.decide(request("before", "r2", digits_entered={"digits": "1"}))
                assert down.value.code() == grpc.StatusCode.UNAVAILABLE
                assert await health_of(served) == health_pb2.HealthCheckResponse.NOT_SERVING
                outage = await front.probe_all("outage")
                for vendor in VENDORS:
                    assert (outage[vendor].status, outage[vendor].fallback) == (200, True), vendor
                # Back on the same port, with the same data: nothing is restarted.
                with start_redis(tmp_path, port=port, durable=True):
                    await all_recovered(front.probe_all)
                    assert await health_of(served) == health_pb2.HealthCheckResponse.SERVING
                    # The call from before the outage goes on where it was.
                    await served.decide(request("before", "r2", digits_entered={"digits": "1"}))
                    snapshot = await served.stub.GetCall(
                        pb.GetCallRequest(call_id="before"), timeout=30
                    )
                    assert snapshot.call.turn_count == 2
                    assert [turn.request.request_id for turn in snapshot.turns] == ["r1", "r2"]
    finally:
        first.__exit__(None, None, None)


# -- the Telnyx Call Control API failing --------------------------------------------------------

_TIGHT_RETRIES = {
    "TELNYX_COMMAND_ATTEMPTS": "3",
    "TELNYX_COMMAND_TIMEOUT_MS": "300",
    "TELNYX_COMMAND_BUDGET_MS": "3000",
    "TELNYX_ACK_BUDGET_MS": "20000",
}


def _answered(call_control_id: str, event_id: str) -> bytes:
    state = telnyx_client_state.encode_state(
        telnyx_client_state.ClientState(telnyx_client_state.KIND_INBOUND)
    )
    hook = webhook(
        "call.answered",
        call_control_id,
        client_state=state,
        event_id=event_id,
        from_="+13125550123",
        to="+18005550100",
    )
    return json.dumps(hook).encode()


async def test_telnyx_api_5xx_timeouts_and_refusals_are_survived_without_a_restart() -> None:
    key = Ed25519PrivateKey.generate()
    async with serve() as served, serve_fake() as fake:
        env = gateway_env(fake, key, **_TIGHT_RETRIES)
        async with serve_telnyx(f"127.0.0.1:{served.running.port}", env) as client:

            async def deliver(raw: bytes) -> int:
                reply = await client.post(
                    "/telnyx/webhooks", content=raw, headers=signed_headers(raw, key)
                )
                assert "error" in reply.json() or reply.json()["status"] in ("ok", "accepted")
                return reply.status_code

            # 5xx on every attempt: not acknowledged (503, in format), so Telnyx redelivers;
            # once the API is back the redelivery sends the command, exactly once.
            fake.fail_next(3, status=503)
            outage = _answered("v3:api-5xx", "evt-5xx")
            assert await deliver(outage) == 503
            assert fake.executed_on("v3:api-5xx") == []
            assert await deliver(outage) == 200
            sent = fake.executed_on("v3:api-5xx")
            assert [command.command for command in sent] == ["gather_using_speak"]

            # A slow API: the attempt times out and the retry gets through, once.
            fake.delay_next(1.0)
            assert await deliver(_answered("v3:api-slow", "evt-slow")) == 200
            slow = [r for r in fake.received if r.call_control_id == "v3:api-slow"]
            assert len({r.command_id for r in slow}) == 1
            assert len(fake.executed_on("v3:api-slow")) == 1

            # A refusal (422, not "call ended"): the dialogue hears of it as a platform error
            # and decides what the caller hears instead; the call goes on.
            fake.fail_next(1, status=422, code="10015", command="gather_using_speak")
            assert await deliver(_answered("v3:api-422", "evt-422")) == 200
            snapshot = await served.stub.GetCall(
                pb.GetCallRequest(call_id="v3:api-422"), timeout=30
            )
            events = [turn.request.WhichOneof("event") for turn in snapshot.turns]
            assert events == ["call_started", "platform_error"]
            assert fake.executed_on("v3:api-422"), "the dialogue's answer to the refusal was sent"

            # And afterwards a new call runs normally on the same gateway.
            assert await deliver(_answered("v3:api-after", "evt-after")) == 200
            after = fake.executed_on("v3:api-after")
            assert [command.command for command in after] == ["gather_using_speak"]
            assert BUSY not in str(after[0].body.get("payload", ""))
        assert fake.problems == []
