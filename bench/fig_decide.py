"""Figure 1: DecideNextAction against the echo servicer — throughput, p50 and p99 by concurrency.

The server (SQLite store, and Redis when the Redis store exists) and two echo servicers — the
same no-op on grpc.aio and on the synchronous gRPC server (16 threads) — run as separate
processes; the load generator, another process, runs the carrier script at each concurrency,
the targets taking turns within each repeat. Each ratio's baseline is the faster echo at that
concurrency (its own CPU per request beside it), so the server is held to the cheaper stack.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict

from bench.context import Context, cpu_per_request_us, describe_run, redis_unavailable
from bench.driver import LoadGenerator
from bench.loadgen import RunSpec
from bench.procs import Child, echo_argv, launch, running, server_argv
from bench.results import Figure, Ratio, RunResult, Summary, Table, Target, fmt, median
from tests.support.redis_server import start_redis

# Issue 18's targets, against the faster echo.
THROUGHPUT_TARGETS = {"SQLite": Target(">=", 0.5), "Redis": Target(">=", 0.5)}
TARGET_CONCURRENCY = 64
P99_TARGET = Target("<=", 3.0)
CPU_TARGET = Target("<=", 2.0)
ECHOES = {"echo (grpc.aio)": False, "echo (sync, 16 threads)": True}


def run(ctx: Context) -> Figure:
    config = ctx.config
    figure = Figure("1", "DecideNextAction against a no-op echo servicer (same message sizes)")
    scratch = ctx.scratch("fig1")
    with contextlib.ExitStack() as stack:
        stores = {"SQLite": f"sqlite://{scratch / 'dialogue.db'}"}
        reason = redis_unavailable()
        if reason is None:
            stores["Redis"] = stack.enter_context(start_redis(ctx.scratch("fig1-redis"))).url
        else:
            figure.notes.append(f"Redis not measured: {reason}.")
        echoes = {
            name: launch(f"fig1-{'sync-' if sync else ''}echo", echo_argv(sync=sync), ctx.log_dir)
            for name, sync in ECHOES.items()
        }
        servers = {
            name: launch(f"fig1-server-{name}", server_argv(url), ctx.log_dir)
            for name, url in stores.items()
        }
        targets: dict[str, Child] = {**echoes, **servers}
        stack.enter_context(running(*targets.values()))
        load = stack.enter_context(LoadGenerator(ctx.log_dir))
        results: dict[tuple[str, int], list[RunResult]] = defaultdict(list)
        cpu: dict[tuple[str, int], list[float]] = defaultdict(list)
        names = list(targets)
        for repeat in range(config.repeats):
            for concurrency in config.concurrencies:
                # Taking turns in a rotating order spreads any drift over every target.
                shift = repeat % len(names)
                for name in names[shift:] + names[:shift]:
                    child = targets[name]
                    before = child.cpu_seconds()
                    result = load.run(
                        RunSpec(
                            kind="grpc",
                            target=child.address,
                            concurrency=concurrency,
                            duration_s=config.duration_s,
                            warmup_s=config.warmup_s,
                            max_requests=config.max_requests,
                            prefix=ctx.prefix("d"),
                        )
                    )
                    child.check_alive()
                    results[name, concurrency].append(result)
                    cpu[name, concurrency].append(cpu_per_request_us(child, before, result))
                    ctx.say(describe_run(f"fig 1 {name} ×{concurrency}", result))

    table = Table(
        "Runs (medians)",
        [
            "target",
            "concurrent calls",
            "throughput (/s)",
            "p50 (ms)",
            "p99 (ms)",
            "server CPU per request (µs)",
            "server CPU (cores)",
            "load generator CPU (cores)",
            "errors",
        ],
    )
    summaries = {key: Summary.of(value) for key, value in results.items()}
    for name in names:
        for concurrency in config.concurrencies:
            s = summaries[name, concurrency]
            table.rows.append(
                [
                    name if name in ECHOES else f"DecideNextAction, {name}",
                    str(concurrency),
                    fmt(s.throughput, 0),
                    fmt(s.p50_ms, 2),
                    fmt(s.p99_ms, 2),
                    fmt(median(cpu[name, concurrency]), 0),
                    fmt(median(cpu[name, concurrency]) * s.throughput / 1e6, 2),
                    fmt(s.client_cpu, 2),
                    str(s.errors),
                ]
            )
    figure.tables.append(table)
    for concurrency in config.concurrencies:
        # The faster echo at this concurrency is the baseline of every ratio.
        baseline = max(ECHOES, key=lambda echo: summaries[echo, concurrency].throughput)
        echo_s = summaries[baseline, concurrency]
        targeted = concurrency == TARGET_CONCURRENCY
        for name in stores:
            mine = summaries[name, concurrency]
            figure.ratios.append(
                Ratio(
                    f"{name}, {concurrency} concurrent: throughput",
                    mine.throughput,
                    echo_s.throughput,
                    "req/s",
                    baseline,
                    THROUGHPUT_TARGETS[name] if targeted else None,
                )
            )
            figure.ratios.append(
                Ratio(
                    f"{name}, {concurrency} concurrent: p99 latency",
                    mine.p99_ms,
                    echo_s.p99_ms,
                    "ms",
                    baseline,
                    P99_TARGET if targeted else None,
                )
            )
            figure.ratios.append(
                Ratio(
                    f"{name}, {concurrency} concurrent: server CPU per decision",
                    median(cpu[name, concurrency]),
                    median(cpu[baseline, concurrency]),
                    "µs",
                    baseline,
                    CPU_TARGET if targeted else None,
                )
            )
    figure.notes.append(
        "CPU in cores: 1.00 is one CPU busy all the time. The machine's CPUs are shared by the "
        "server under test and the load generator, so a baseline that keeps both busy is "
        "bounded by the machine rather than by its own code."
    )
    errors = sum(s.errors for s in summaries.values())
    if errors:
        figure.notes.append(f"{errors} requests failed; see the table.")
    return figure
