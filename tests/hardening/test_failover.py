"""Failover drills: calls keep flowing through a real gateway while a server replica or a Redis
node dies, and every call's history stays exact.

- two server replicas behind one gateway (the Aliyun CCC one, in front of
  `ipv4:127.0.0.1:A,127.0.0.1:B`), Redis-backed: each replica SIGKILLed and restarted in turn,
  then a rolling restart (SIGTERM one at a time); zero fallbacks while the other replica is up;
- the same over a 3-master Redis Cluster, one master restarted;
- the same over a Sentinel-watched master and two replicas (`?wait_replicas=1`), the master
  SIGKILLed and a replica promoted.

Every call speaks a fixed script; a caller that hears the fallback is transferred (its call
stops there). Afterwards each call's history must be exactly the turns it was answered, in
order, once each — plus, at most, the turn that got the fallback (the server may have applied
it after the gateway gave up on it). The figures (calls, turns, fallbacks, seconds from the
fault to the last fallback) are printed for the operations doc; run with `-s` to see them.
Every loop is bounded in count and time; nothing asserts a duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import httpx

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from tests.hardening.probes import BUSY
from tests.support.gateway import serve_gateway
from tests.support.ports import free_port
from tests.support.redis_server import start_redis
from tests.support.redis_topologies import Cluster, Replicated, start_cluster, start_sentinel
from tests.support.server_process import RunningServer, start_server

# One call: the greeting (no utterance), then the menu, a number, back, and the data plan.
UTTERANCES = ("", "1", "13800138000", "1", "2")
# Callers at once, each starting call after call until the faults are over.
CALLERS = 6
MAX_CALLS_PER_CALLER = 60
# Between a caller's turns, so that turns are in flight on every replica while faults happen.
PAUSE_S = 0.05
# The gateway's deadline: longer than production's 500 ms so that a busy 2-core test machine
# does not turn slowness into fallbacks; the drills are about failures, not latency.
DEADLINE_S = 2.0
AFTER_FALLBACK_S = 0.2
_BOUND_S = 120.0
_GRACE_S = "2"


@dataclass
class Figures:
    """What a drill measured."""

    calls: int = 0
    turns: int = 0
    fallbacks: int = 0
    faults: int = 0
    fault_at: float = 0.0
    last_fallback_at: float = 0.0
    callers_left: int = CALLERS
    histories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fell_back: set[str] = field(default_factory=set)

    def report(self, name: str) -> str:
        recovery = (
            f"{self.last_fallback_at - self.fault_at:.1f} s from the first fault to the last "
            "fallback"
            if self.fallbacks
            else "no fallback"
        )
        return (
            f"{name}: {self.calls} calls, {self.turns} answered turns, {self.faults} faults, "
            f"{self.fallbacks} fallbacks; {recovery}"
        )


class Replica:
    """One dialogue-server process on a fixed port, to be killed and started again."""

    def __init__(self, stack: contextlib.ExitStack, store: str) -> None:
        self.port = free_port()
        self._stack = stack
        self._store = store
        self._running: RunningServer | None = None
        self.logs: list[str] = []  # stderr of every process this replica was

    def start(self) -> None:
        self._keep_log()
        self._running = self._stack.enter_context(
            start_server(
                *("--listen", f"127.0.0.1:{self.port}", "--store", self._store),
                *("--grace-seconds", _GRACE_S),
            )
        )

    def _keep_log(self) -> None:
        if self._running is not None:
            self.logs.append(self._running.stderr_text())

    def internal_errors(self) -> list[str]:
        """Tracebacks and errors the replica logged: a fault must cost no server bug."""
        self._keep_log()
        self._running = None
        return [
            chunk
            for log in self.logs
            for chunk in log.split("\n20")
            if "Traceback" in chunk or " ERROR " in chunk
        ]

    def kill(self) -> None:
        assert self._running is not None
        self._running.process.kill()
        self._running.process.wait(30)
        self._running.stopped = True  # its end is the test's doing, not a crash

    def terminate(self) -> None:
        assert self._running is not None
        assert self._running.stop() == 0, self._running.describe_failure()


@contextlib.contextmanager
def replicas(store: str) -> Iterator[tuple[Replica, Replica]]:
    with contextlib.ExitStack() as stack:
        pair = Replica(stack, store), Replica(stack, store)
        for replica in pair:
            replica.start()
        yield pair
        for replica in pair:
            errors = replica.internal_errors()
            assert not errors, "\n".join(errors)


async def speak(client: httpx.AsyncClient, call_id: str, figures: Figures) -> None:
    """One caller's call through the gateway, until its script ends or it hears the fallback."""
    figures.calls += 1
    answered: list[str] = []
    for step, utterance in enumerate(UTTERANCES):
        params = {
            "Action": "Dialogue",
            "CallId": call_id,
            "InstanceId": "inst-1",
            "CallingNumber": "10086",
            "CalledNumber": "13800138000",
            "Utterance": utterance,
            "SignatureNonce": f"{call_id}-{step}",
        }
        reply = await client.get("/", params=params)
        assert reply.status_code == 200, reply.text
        feedback = reply.json()["Feedback"]
        # The fallback: "system busy", or the honest announcement CCC makes of a transfer it
        # cannot perform (the transfer hint in ActionParams); the script itself never transfers.
        if BUSY in feedback["Content"] or '"transfer"' in feedback["ActionParams"]:
            figures.fallbacks += 1
            figures.last_fallback_at = time.monotonic()
            figures.fell_back.add(call_id)
            await asyncio.sleep(AFTER_FALLBACK_S)  # the next caller does not ring at once
            break
        answered.append(utterance)
        figures.turns += 1
        await asyncio.sleep(PAUSE_S)
    figures.histories[call_id] = tuple(answered)


async def drill(
    target: str,
    name: str,
    faults: Callable[[Figures], Awaitable[None]],
) -> Figures:
    """Callers speak through a gateway in front of target while `faults` runs; then every
    call's history is checked against what its caller was answered."""
    figures = Figures()
    done = asyncio.Event()

    async def caller(number: int, client: httpx.AsyncClient) -> None:
        try:
            for n in range(MAX_CALLS_PER_CALLER):
                if done.is_set():
                    return
                await speak(client, f"{name}-{number}-{n}", figures)
        finally:
            figures.callers_left -= 1

    async with serve_gateway("aliyun-ccc", target, {}, deadline_s=DEADLINE_S) as client:
        async with asyncio.timeout(_BOUND_S):
            callers = [asyncio.create_task(caller(n, client)) for n in range(CALLERS)]
            try:
                await faults(figures)
            finally:
                done.set()
                await asyncio.gather(*callers)
            metrics = (await client.get("/metrics")).text
    await check_histories(target, figures)
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("dialogue_gateway_fallbacks_total{")
    )
    assert counted == figures.fallbacks, metrics  # every fallback counted, by reason
    print(figures.report(name))
    return figures


async def check_histories(target: str, figures: Figures) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
        for call_id, answered in figures.histories.items():
            try:
                history = await stub.GetCall(
                    pb.GetCallRequest(call_id=call_id), timeout=30, wait_for_ready=True
                )
            except grpc.aio.AioRpcError as error:
                # Unknown to the server: its first turn fell back and was never applied.
                if error.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                history = pb.GetCallResponse()
            spoken = tuple(turn.request.speech_recognized.text for turn in history.turns)
            request_ids = [turn.request.request_id for turn in history.turns]
            assert len(set(request_ids)) == len(request_ids), (call_id, request_ids)
            allowed = {answered}
            if call_id in figures.fell_back:
                allowed.add(UTTERANCES[: len(answered) + 1])
            assert spoken in allowed, (call_id, spoken, answered)


async def after_turns(figures: Figures, more: int) -> None:
    """Waits until `more` further turns were answered (bounded by the drill's timeout)."""
    target = figures.turns + more
    while figures.turns < target:
        assert figures.callers_left, f"every caller made its {MAX_CALLS_PER_CALLER} calls"
        await asyncio.sleep(0.05)


# -- server replicas ----------------------------------------------------------------------------


async def test_replicas_killed_and_restarted_in_turn_cost_no_caller(tmp_path: Path) -> None:
    with start_redis(tmp_path) as redis, replicas(redis.url) as (first, second):

        async def faults(figures: Figures) -> None:
            await after_turns(figures, 20)
            figures.fault_at = time.monotonic()
            for replica in (first, second):  # SIGKILL, mid-call, each in turn
                replica.kill()
                figures.faults += 1
                await after_turns(figures, 20)
                await asyncio.to_thread(replica.start)
                await after_turns(figures, 20)
            for replica in (first, second):  # a rolling restart
                await asyncio.to_thread(replica.terminate)
                figures.faults += 1
                await after_turns(figures, 20)
                await asyncio.to_thread(replica.start)
                await after_turns(figures, 20)

        target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}"
        figures = await drill(target, "replicas", faults)
    assert figures.fallbacks == 0


# -- Redis topologies ---------------------------------------------------------------------------


async def test_a_redis_cluster_master_restarted_during_calls(tmp_path: Path) -> None:
    with start_cluster(tmp_path) as cluster, replicas(cluster.url) as (first, second):

        async def faults(figures: Figures) -> None:
            await after_turns(figures, 20)
            figures.fault_at = time.monotonic()
            await asyncio.to_thread(Cluster.restart, cluster, 1)
            figures.faults += 1
            await after_turns(figures, 30)

        target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}"
        await drill(target, "redis-cluster", faults)


async def test_a_sentinel_failover_during_calls(tmp_path: Path) -> None:
    with start_sentinel(tmp_path) as topology:
        store = topology.url("?wait_replicas=1&wait_timeout_ms=200")
        with replicas(store) as (first, second):

            async def faults(figures: Figures) -> None:
                await after_turns(figures, 20)
                figures.fault_at = time.monotonic()
                topology.master.kill()
                figures.faults += 1
                await asyncio.to_thread(Replicated.wait_failed_over, topology, topology.master.port)
                await after_turns(figures, 30)

            target = f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}"
            await drill(target, "redis-sentinel", faults)
