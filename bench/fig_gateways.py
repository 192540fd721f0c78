"""Figure 2: each gateway's chain against the bare HTTP stack forwarding to the echo servicer.

Per vendor with a script in bench/vendors.py, three HTTP targets take the same requests from a
separate load-generator process (bench.loadgen, or wrk with --http-load wrk):

- the chain: `dialogue-gateway VENDOR` → `dialogue-server` (SQLite), as deployed;
- the gateway alone: `dialogue-gateway VENDOR` → the echo servicer (the server's share removed);
- the baseline: bench/bare.py (FastAPI/uvicorn, no mapping) → the echo servicer.
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections import defaultdict

from bench import wrk
from bench.context import Context, cpu_per_request_us, describe_run
from bench.driver import LoadGenerator
from bench.loadgen import RunSpec
from bench.procs import Child, bare_argv, echo_argv, gateway_argv, launch, running, server_argv
from bench.results import Figure, Ratio, RunResult, Summary, Table, Target, fmt, median
from bench.vendors import script
from gateways.vendors import VENDORS

CHAIN_TARGET = Target(">=", 0.8)


def _fallbacks(gateway: Child) -> int:
    """Decisions the gateway answered with its fallback, from its /readyz."""
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(f"http://{gateway.address}/readyz", timeout=10) as answer,
    ):
        return sum(json.load(answer).get("fallbacks", {}).values())
    return -1


def run(ctx: Context) -> Figure:
    config = ctx.config
    figure = Figure("2", "Gateway chains against the bare HTTP → gRPC stack (echo behind it)")
    scratch = ctx.scratch("fig2")
    chosen = VENDORS if config.vendors is None else [v for v in VENDORS if v in config.vendors]
    vendors = {vendor: script(vendor) for vendor in chosen}
    for vendor, targets in vendors.items():
        if targets is None:
            figure.notes.append(
                f"{vendor} not measured: bench/vendors.py has no script for it yet."
            )
    measured = {vendor: targets for vendor, targets in vendors.items() if targets is not None}
    use_wrk = config.http_load == "wrk"
    if use_wrk and not wrk.available():
        figure.notes.append("wrk is not installed: the Python load generator was used instead.")
        use_wrk = False
    figure.notes.append(
        "Load: "
        + (
            "wrk (one thread, a Lua script making scripted calls)."
            if use_wrk
            else "bench.loadgen (asyncio HTTP/1.1 keep-alive, one scripted call after the other per connection)."
        )
    )
    with contextlib.ExitStack() as stack:
        echo = launch("fig2-echo", echo_argv(), ctx.log_dir)
        server = launch(
            "fig2-server", server_argv(f"sqlite://{scratch / 'dialogue.db'}"), ctx.log_dir
        )
        stack.enter_context(running(echo, server))
        bare = launch("fig2-bare", bare_argv(echo.address), ctx.log_dir)
        chains: dict[str, Child] = {}
        alone: dict[str, Child] = {}
        for vendor in measured:
            chains[vendor] = launch(
                f"fig2-{vendor}", gateway_argv(vendor, server.address), ctx.log_dir
            )
            if config.gateway_alone:
                alone[vendor] = launch(
                    f"fig2-{vendor}-echo", gateway_argv(vendor, echo.address), ctx.log_dir
                )
        stack.enter_context(running(bare, *chains.values(), *alone.values()))
        load = stack.enter_context(LoadGenerator(ctx.log_dir))
        results: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
        cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
        for repeat in range(config.repeats):
            for vendor, targets in measured.items():
                runs = [("bare", bare), ("chain", chains[vendor])]
                if vendor in alone:
                    runs.append(("gateway alone", alone[vendor]))
                shift = repeat % len(runs)
                for kind, child in runs[shift:] + runs[:shift]:
                    spec = RunSpec(
                        kind="http",
                        target=child.address,
                        concurrency=config.gateway_concurrency,
                        duration_s=config.duration_s,
                        warmup_s=config.warmup_s,
                        max_requests=config.max_requests,
                        prefix=ctx.prefix("g"),
                        http_targets=targets,
                    )
                    before = child.cpu_seconds()
                    result = wrk.run(spec, scratch) if use_wrk else load.run(spec)
                    child.check_alive()
                    results[vendor, kind].append(result)
                    cpu[vendor, kind].append(cpu_per_request_us(child, before, result))
                    ctx.say(describe_run(f"fig 2 {vendor} {kind}", result))
        fallbacks = {vendor: _fallbacks(chains[vendor]) for vendor in measured}

    table = Table(
        f"Runs at {config.gateway_concurrency} concurrent connections (medians)",
        [
            "vendor",
            "target",
            "throughput (/s)",
            "p50 (ms)",
            "p99 (ms)",
            "HTTP process CPU per request (µs)",
            "HTTP process CPU (cores)",
            "errors",
        ],
    )
    labels = {"bare": "bare FastAPI → echo", "chain": "gateway → server (SQLite)"}
    if config.gateway_alone:
        labels["gateway alone"] = "gateway → echo"
    for vendor in measured:
        summaries = {kind: Summary.of(results[vendor, kind]) for kind in labels}
        for kind, label in labels.items():
            s = summaries[kind]
            table.rows.append(
                [
                    vendor,
                    label,
                    fmt(s.throughput, 0),
                    fmt(s.p50_ms, 2),
                    fmt(s.p99_ms, 2),
                    fmt(median(cpu[vendor, kind]), 0),
                    fmt(median(cpu[vendor, kind]) * s.throughput / 1e6, 2),
                    str(s.errors),
                ]
            )
        bare_s = summaries["bare"]
        figure.ratios += [
            Ratio(
                f"{vendor} chain: throughput",
                summaries["chain"].throughput,
                bare_s.throughput,
                "req/s",
                "bare → echo",
                CHAIN_TARGET,
            ),
            Ratio(
                f"{vendor} chain: p99 latency",
                summaries["chain"].p99_ms,
                bare_s.p99_ms,
                "ms",
                "bare → echo",
            ),
        ]
        if "gateway alone" in summaries:
            figure.ratios.append(
                Ratio(
                    f"{vendor} gateway alone (→ echo): throughput",
                    summaries["gateway alone"].throughput,
                    bare_s.throughput,
                    "req/s",
                    "bare → echo",
                )
            )
        if fallbacks[vendor]:
            figure.notes.append(
                f"{vendor}: the gateway answered {fallbacks[vendor]} requests with its fallback"
                " (-1: could not ask /readyz)."
            )
    figure.tables.append(table)
    return figure
