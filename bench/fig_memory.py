"""Figure 4: memory per active call in each store, and the server's resident memory under load.

- Encoded state: `encode(state)` after each step of the carrier script (what every turn writes).
- Per store: calls of `memory_turns` turns (active calls, mid-dialogue) written through the
  store API, twice `memory_calls` of them; bytes per call = growth over the second batch /
  `memory_calls` (fixed costs come with the first) — SQLite file (checkpointed), the memory
  store's allocations (tracemalloc); for Redis, the exact `MEMORY USAGE` of every key the store
  wrote, per call (`used_memory` moves by more than a few calls take, with client buffers) —
  against the payload the store must keep (last state + turn records), and the 2 KiB budget.
- RSS: the server's resident memory at its peak under the highest concurrency, against the
  echo servicer's under the same load.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import statistics
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import redis

from bench.context import Context, describe_run, redis_unavailable
from bench.driver import LoadGenerator
from bench.loadgen import RunSpec
from bench.populate import Template, call_id, fill_url, populate
from bench.procs import Child, PeakSampler, echo_argv, launch, running, server_argv
from bench.results import Figure, Ratio, Table, Target, fmt_bytes
from bench.workload import carrier_walk
from dialogue.v1 import dialogue_pb2 as pb
from server.engine.state import encode
from server.store import MemoryStore, SessionStore, open_store
from server.turnlog import compact
from tests.support.redis_server import start_redis

BUDGET_BYTES = 2048
BUDGET_TARGET = Target("<=", 1.0)
_BUDGET_LABEL = "2 KiB budget"


def _sqlite_bytes(path: Path) -> int:
    """The database's size with its WAL folded in (what a checkpointed file holds)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_count = conn.execute("PRAGMA page_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(page_count * page_size)


async def _marginal(
    store: SessionStore, calls: int, turns: int, measure: Callable[[], int]
) -> float:
    """Bytes per call of the second batch of `calls` calls: fixed costs (schema, scripts,
    buffers, first pages) come with the first batch and are not counted."""
    await populate(store, calls, turns, "mem")
    before = measure()
    await populate(store, calls, turns, "mem", start=calls)
    return (measure() - before) / calls


async def _sqlite_per_call(path: Path, calls: int, turns: int) -> float:
    store = open_store(f"sqlite://{path}")
    try:
        return await _marginal(store, calls, turns, lambda: _sqlite_bytes(path))
    finally:
        await store.close()


def _redis_key_bytes(url: str) -> int:
    """The sum of `MEMORY USAGE` (exact: SAMPLES 0) over every key of the Redis at url, which
    only the store writes to: keys and values, their headers and table entries."""
    client = redis.Redis.from_url(url)
    try:
        pipe = client.pipeline(transaction=False)
        for key in client.scan_iter(count=1000):
            pipe.memory_usage(key, samples=0)
        return sum(int(size or 0) for size in pipe.execute())
    finally:
        client.close()


async def _redis_per_call(url: str, calls: int, turns: int) -> float:
    store = open_store(fill_url(url))
    try:
        await populate(store, calls, turns, "mem")
    finally:
        await store.close()
    return _redis_key_bytes(url) / calls


async def _memory_store_per_call(calls: int, turns: int) -> float:
    store = MemoryStore()
    tracemalloc.start()
    try:
        return await _marginal(store, calls, turns, lambda: tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
        await store.close()


def run(ctx: Context) -> Figure:
    config = ctx.config
    figure = Figure("4", "Memory: bytes per active call in each store, server RSS under load")
    scratch = ctx.scratch("fig4")
    calls, turns = config.memory_calls, config.memory_turns
    template = Template.of(turns)
    payload = template.payload_bytes(call_id("mem", 0))
    walk = carrier_walk()
    sizes = [len(encode(state)) for state, _, _ in walk]
    # What the turn log keeps of each turn: the request without its ids, and the response.
    turn_sizes = [
        len(compact(pb.DecideNextActionRequest.FromString(request))) + len(response)
        for _, request, response in walk
    ]
    figure.ratios.append(
        Ratio(
            "encoded state per call (largest step)",
            max(sizes),
            BUDGET_BYTES,
            "B",
            _BUDGET_LABEL,
            BUDGET_TARGET,
        )
    )
    stores = Table(
        f"Bytes per active call: the growth over {calls:,} more calls of {turns} turns, written "
        "through the store API",
        ["store", "bytes per call", "payload per call", "overhead (× payload)"],
    )
    per_call: dict[str, float] = {
        "SQLite file": asyncio.run(_sqlite_per_call(scratch / "memory.db", calls, turns)),
        "memory store (tracemalloc)": asyncio.run(_memory_store_per_call(calls, turns)),
    }
    reason = redis_unavailable()
    redis_url: str | None = None
    with contextlib.ExitStack() as stack:
        if reason is None:
            redis_url = stack.enter_context(start_redis(ctx.scratch("fig4-redis"))).url
            per_call["Redis (MEMORY USAGE of its keys)"] = asyncio.run(
                _redis_per_call(redis_url, calls, turns)
            )
        else:
            figure.notes.append(f"Redis not measured: {reason}.")
        for name, value in per_call.items():
            stores.rows.append(
                [name, fmt_bytes(value), fmt_bytes(payload), f"{value / payload:.2f}"]
            )
            figure.ratios.append(
                Ratio(
                    f"{name}: bytes per active call",
                    value,
                    BUDGET_BYTES,
                    "B",
                    _BUDGET_LABEL,
                    BUDGET_TARGET,
                )
            )
            figure.ratios.append(
                Ratio(f"{name}: bytes per call against its payload", value, payload, "B", "payload")
            )
        ctx.say("fig 4 bytes per call: " + ", ".join(f"{k} {v:,.0f}" for k, v in per_call.items()))

        # Resident memory under load.
        rss = Table(
            f"Resident memory, {max(config.concurrencies)} concurrent calls for {config.duration_s:g} s",
            ["process", "idle (after start)", "peak under load", "after load"],
        )
        servers: dict[str, Child] = {"echo": launch("fig4-echo", echo_argv(), ctx.log_dir)}
        servers["server, SQLite"] = launch(
            "fig4-server-sqlite", server_argv(f"sqlite://{scratch / 'rss.db'}"), ctx.log_dir
        )
        if redis_url is not None:
            servers["server, Redis"] = launch(
                "fig4-server-redis", server_argv(redis_url), ctx.log_dir
            )
        stack.enter_context(running(*servers.values()))
        load = stack.enter_context(LoadGenerator(ctx.log_dir))
        peaks: dict[str, int] = {}
        for name, child in servers.items():
            idle = child.rss_bytes()
            with PeakSampler([child]) as sampler:
                result = load.run(
                    RunSpec(
                        kind="grpc",
                        target=child.address,
                        concurrency=max(config.concurrencies),
                        duration_s=config.duration_s,
                        warmup_s=config.warmup_s,
                        max_requests=config.max_requests,
                        prefix=ctx.prefix("m"),
                    )
                )
            child.check_alive()
            peaks[name] = sampler.peaks[child.name]
            rss.rows.append(
                [name, fmt_bytes(idle), fmt_bytes(peaks[name]), fmt_bytes(child.rss_bytes())]
            )
            ctx.say(
                describe_run(f"fig 4 {name}", result) + f", peak RSS {peaks[name] / 2**20:.0f} MiB"
            )
        for name, peak in peaks.items():
            if name != "echo":
                figure.ratios.append(
                    Ratio(f"{name}: peak RSS under load", peak, peaks["echo"], "B", "echo")
                )
    sizes_table = Table(
        "Encoded state and turn record by step of the carrier script",
        ["step", "node after", "encoded state (B)", "kept request + response (B)"],
        [
            [str(step), state.node, str(size), str(turn)]
            for step, ((state, _, _), size, turn) in enumerate(
                zip(walk, sizes, turn_sizes, strict=True)
            )
        ],
    )
    figure.tables += [stores, rss, sizes_table]
    figure.notes.append(
        f"The turn log is per call too: each turn keeps its request and response "
        f"(median {statistics.median(turn_sizes):,.0f} B here) and a call keeps up to 500 turns "
        f"(open_store's max_turns), so a long call can hold about "
        f"{fmt_bytes(500 * statistics.median(turn_sizes))} in any store."
    )
    return figure
