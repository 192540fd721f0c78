"""`python -m bench.loadgen`: the closed-loop load generator, a process of its own.

It reads one JSON `RunSpec` per stdin line, runs it, and writes one JSON `RunResult` per stdout
line, until stdin closes. A run starts `concurrency` workers that each make scripted calls one
request after the other (closed loop): over gRPC (grpc.aio, the script's DecideNextAction
requests) or over HTTP/1.1 keep-alive (a vendor's request targets, bench/vendors.py). Every run
is bounded in time (warm-up + duration) and in count (max_requests measured); latencies and
throughput are taken over the requests that complete inside the measurement window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Literal

import grpc

from bench.results import RunResult, percentile
from bench.vendors import CALL_ID, signed_headers
from bench.workload import CARRIER_SELECTOR, SCRIPTS, decide_request

DECIDE = "/dialogue.v1.DialogueService/DecideNextAction"
_CONNECT_BOUND_S = 30.0
_HEAD_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run of the load generator.

    Attributes:
        kind: "grpc" (DecideNextAction) or "http" (vendor requests).
        target: host:port.
        concurrency: Workers, each with one request in flight at a time.
        duration_s: Length of the measurement window (after the warm-up).
        warmup_s: Requests completing before this are not measured.
        max_requests: The window also ends once this many requests completed in it.
        prefix: Makes this run's call ids unique (calls never repeat across runs).
        script: gRPC: the script of bench/workload.py.
        selector: gRPC: the flow selector of new calls.
        channels: gRPC: channels (each its own TCP connection) the workers are spread over.
        http_targets: HTTP: one call's requests, [method, target, body], CALLID where the call
            id goes.
        http_signer: HTTP: the vendor whose platform signs each request as it is sent
            (bench.vendors.signed_headers; Telnyx), "" for none.
        timeout_s: Deadline of one request.
    """

    kind: Literal["grpc", "http"]
    target: str
    concurrency: int
    duration_s: float
    warmup_s: float
    max_requests: int
    prefix: str
    script: str = "carrier"
    selector: str = CARRIER_SELECTOR
    channels: int = 1
    http_targets: list[list[str]] = field(default_factory=list)
    http_signer: str = ""
    timeout_s: float = 10.0


class _Clock:
    """The run's bounds and what completed inside its measurement window."""

    def __init__(self, spec: RunSpec) -> None:
        now = time.perf_counter()
        self.measure_from = now + spec.warmup_s
        self.deadline = self.measure_from + spec.duration_s
        self.max_requests = spec.max_requests
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.total = 0
        self.ended_at: float | None = None

    @property
    def done(self) -> bool:
        if self.ended_at is None and time.perf_counter() >= self.deadline:
            self.ended_at = self.deadline
        return self.ended_at is not None

    def record(self, started: float, error: str | None) -> None:
        finished = time.perf_counter()
        self.total += 1
        if error is not None:
            self.errors[error] += 1
        if self.ended_at is not None or not self.measure_from <= finished <= self.deadline:
            return
        if error is None:
            self.latencies.append(finished - started)
        if len(self.latencies) >= self.max_requests:
            self.ended_at = finished


async def _grpc_worker(index: int, channel: grpc.aio.Channel, clock: _Clock, spec: RunSpec) -> None:
    decide = channel.unary_unary(DECIDE, request_serializer=None, response_deserializer=None)
    steps = len(SCRIPTS[spec.script])
    number = 0
    while not clock.done:
        call_id = f"{spec.prefix}-{index}-{number}"
        number += 1
        for step in range(steps):
            if clock.done:
                return
            payload = decide_request(spec.script, call_id, step, spec.selector).SerializeToString()
            started = time.perf_counter()
            error = None
            try:
                await decide(payload, timeout=spec.timeout_s)
            except grpc.aio.AioRpcError as exc:
                error = exc.code().name
            clock.record(started, error)


class _Connection:
    """One HTTP/1.1 keep-alive connection, reopened when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, body: str, signer: str = "") -> int:
        """Sends one request (signed as `signer`'s platform signs) and reads the whole answer;
        returns the status code."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        payload = body.encode()
        ask = f"{method} {target} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if payload:
            ask += f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        for name, value in signed_headers(signer, payload) if signer else ():
            ask += f"{name}: {value}\r\n"
        self._writer.write(ask.encode("ascii") + b"\r\n" + payload)
        head = await self._reader.readuntil(b"\r\n\r\n")
        if len(head) > _HEAD_LIMIT:
            raise ValueError("answer head too long")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        }
        if "content-length" in headers:
            await self._reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await self._reader.readuntil(b"\r\n")).strip(), 16):
                await self._reader.readexactly(size + 2)
            await self._reader.readuntil(b"\r\n")
        else:
            await self._reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _http_worker(index: int, clock: _Clock, spec: RunSpec) -> None:
    host, _, port = spec.target.rpartition(":")
    connection = _Connection(host, int(port))
    number = 0
    try:
        while not clock.done:
            call_id = f"{spec.prefix}-{index}-{number}"
            number += 1
            for method, target, body in spec.http_targets:
                if clock.done:
                    return
                started = time.perf_counter()
                error = None
                try:
                    async with asyncio.timeout(spec.timeout_s):
                        status = await connection.request(
                            method,
                            target.replace(CALL_ID, call_id),
                            body.replace(CALL_ID, call_id),
                            spec.http_signer,
                        )
                    if status != 200:
                        error = f"HTTP {status}"
                except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                    error = type(exc).__name__
                    await connection.close()
                clock.record(started, error)
    finally:
        await connection.close()


async def run(spec: RunSpec) -> RunResult:
    """Runs one spec to its bounds and summarises it."""
    channels: list[grpc.aio.Channel] = []
    if spec.kind == "grpc":
        # Separate subchannel pools give every channel its own TCP connection, so that
        # SO_REUSEPORT can spread them over server processes.
        options = [("grpc.use_local_subchannel_pool", 1)] if spec.channels > 1 else []
        channels = [
            grpc.aio.insecure_channel(spec.target, options=options) for _ in range(spec.channels)
        ]
        async with asyncio.timeout(_CONNECT_BOUND_S):
            await asyncio.gather(*(channel.channel_ready() for channel in channels))
    clock = _Clock(spec)
    if spec.kind == "grpc":
        workers = [
            _grpc_worker(i, channels[i % len(channels)], clock, spec)
            for i in range(spec.concurrency)
        ]
    else:
        workers = [_http_worker(i, clock, spec) for i in range(spec.concurrency)]
    tasks = [asyncio.ensure_future(worker) for worker in workers]
    await asyncio.sleep(max(0.0, clock.measure_from - time.perf_counter()))
    cpu_from = time.process_time()
    while not clock.done and not all(task.done() for task in tasks):
        await asyncio.sleep(min(0.01, max(0.0, clock.deadline - time.perf_counter())))
    cpu = time.process_time() - cpu_from
    end = clock.ended_at if clock.ended_at is not None else time.perf_counter()
    await asyncio.gather(*tasks)
    for channel in channels:
        await channel.close()
    window = max(end - clock.measure_from, 1e-9)
    latencies = sorted(clock.latencies)
    return RunResult(
        completed=len(latencies),
        total=clock.total,
        errors=dict(clock.errors),
        window_s=window,
        throughput=len(latencies) / window,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        mean_ms=(sum(latencies) / len(latencies) * 1000) if latencies else float("nan"),
        client_cpu=cpu / window,
    )


async def _agent() -> None:
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if not line.strip():
            continue
        result = await run(RunSpec(**json.loads(line)))
        print(json.dumps(asdict(result)), flush=True)


def main() -> None:
    asyncio.run(_agent())


if __name__ == "__main__":
    main()
