"""Figure 5: one server worker process against two, SQLite store, same load.

With `dialogue-server --workers N` (when the server has it) the server starts its own workers;
until then two server processes listen on the same port, which gRPC binds with SO_REUSEPORT on
Linux, and the kernel spreads the load generator's connections (several channels, each its own
TCP connection) over them. On a 2-core machine the load generator needs a share of the CPUs
too, so two workers cannot reach 2×.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import subprocess
import sys
from collections import defaultdict

from bench.context import Context, describe_run
from bench.driver import LoadGenerator
from bench.loadgen import RunSpec
from bench.procs import REPO_ROOT, Child, cpu_seconds, launch, running, server_argv
from bench.results import Figure, Ratio, RunResult, Summary, Table, Target, fmt, median
from server.store import open_store

# A second worker must not make a decision dearer (1.2: the run-to-run noise of this machine).
CPU_GROWTH_TARGET = Target("<=", 1.2)


def has_workers_flag() -> bool:
    """Whether `dialogue-server` offers --workers."""
    done = subprocess.run(
        [sys.executable, "-m", "server", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return "--workers" in done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _create(url: str) -> None:
    """Creates the database before the workers start: workers opening a fresh SQLite file at
    the same moment race to set it up, and the loser exits ("database is locked")."""
    store = open_store(url)
    try:
        await store.ping()
    finally:
        await store.close()


def run(ctx: Context) -> Figure:
    config = ctx.config
    figure = Figure("5", "Scaling: one server worker process against two (SQLite)")
    scratch = ctx.scratch("fig5")
    with contextlib.ExitStack() as stack:
        one = launch("fig5-one", server_argv(f"sqlite://{scratch / 'one.db'}"), ctx.log_dir)
        port = free_port()
        listen = f"127.0.0.1:{port}"
        two_url = f"sqlite://{scratch / 'two.db'}"
        asyncio.run(_create(two_url))
        if has_workers_flag():
            figure.notes.append("Two workers: `dialogue-server --workers 2`.")
            two = [
                launch(
                    "fig5-two",
                    [*server_argv(two_url, listen=listen), "--workers", "2"],
                    ctx.log_dir,
                )
            ]
        else:
            figure.notes.append(
                "dialogue-server has no --workers yet: two server processes on one port "
                "(gRPC's SO_REUSEPORT) stand in for two workers, sharing one SQLite file."
            )
            two = [
                launch(f"fig5-two-{i}", server_argv(two_url, listen=listen), ctx.log_dir)
                for i in range(2)
            ]
        stack.enter_context(running(one, *two))
        load = stack.enter_context(LoadGenerator(ctx.log_dir))
        deployments: dict[str, tuple[str, list[Child]]] = {
            "1 worker": (one.address, [one]),
            "2 workers": (listen, two),
        }
        results: dict[str, list[RunResult]] = defaultdict(list)
        cpu: dict[str, list[float]] = defaultdict(list)
        shares: list[float] = []
        serving: list[int] = []
        for repeat in range(config.repeats):
            order = list(deployments)
            if repeat % 2:
                order.reverse()
            for name in order:
                address, children = deployments[name]
                # Per process, workers forked by a child included.
                pids = [pid for child in children for pid in child.family()]
                before = {pid: cpu_seconds(pid) for pid in pids}
                result = load.run(
                    RunSpec(
                        kind="grpc",
                        target=address,
                        concurrency=config.scaling_concurrency,
                        duration_s=config.duration_s,
                        warmup_s=config.warmup_s,
                        max_requests=config.max_requests,
                        prefix=ctx.prefix("w"),
                        channels=config.scaling_channels,
                    )
                )
                used = [cpu_seconds(pid) - before[pid] for pid in pids]
                for child in children:
                    child.check_alive()
                results[name].append(result)
                cpu[name].append(sum(used) / max(result.total, 1) * 1e6)
                if name == "2 workers" and sum(used) > 0:
                    busy = [u for u in used if u > 0.05 * sum(used)]
                    serving.append(len(busy))
                    shares.append(max(used) / sum(used))
                ctx.say(describe_run(f"fig 5 {name}", result))
    table = Table(
        f"{config.scaling_concurrency} concurrent calls over {config.scaling_channels} connections (medians)",
        [
            "deployment",
            "throughput (/s)",
            "p50 (ms)",
            "p99 (ms)",
            "server CPU per request (µs)",
            "decisions per server core (/s)",
            "errors",
        ],
    )
    summaries = {name: Summary.of(runs) for name, runs in results.items()}
    for name, s in summaries.items():
        table.rows.append(
            [
                name,
                fmt(s.throughput, 0),
                fmt(s.p50_ms, 2),
                fmt(s.p99_ms, 2),
                fmt(median(cpu[name]), 0),
                # One core busy for a second pays for this many decisions.
                fmt(1e6 / median(cpu[name]) if median(cpu[name]) else math.nan, 0),
                str(s.errors),
            ]
        )
    figure.tables.append(table)
    figure.ratios += [
        Ratio(
            "2 workers: throughput",
            summaries["2 workers"].throughput,
            summaries["1 worker"].throughput,
            "req/s",
            "1 worker",
        ),
        Ratio(
            "2 workers: p99 latency",
            summaries["2 workers"].p99_ms,
            summaries["1 worker"].p99_ms,
            "ms",
            "1 worker",
        ),
        Ratio(
            "2 workers: server CPU per decision",
            median(cpu["2 workers"]),
            median(cpu["1 worker"]),
            "µs",
            "1 worker",
            CPU_GROWTH_TARGET,
        ),
    ]
    if shares:
        figure.notes.append(
            f"Balance: the busiest server process did {median(shares):.0%} of the servers' CPU "
            "work (median over runs; 50% is an even split between two)."
        )
    if serving and min(serving) < 2:
        figure.notes.append(
            f"**Only {min(serving)} process served** in some runs of the two-worker deployment: "
            "a worker is missing (see its log)."
        )
    return figure
