"""Figure 3: per-decision latency as the store fills and as flows grow; flow load time by size.

- Active calls: stores pre-populated through the store API with 1, 10 000 and 100 000 calls
  (one turn each), a server on each; per-decision latency at concurrency 1 (the carrier script),
  against the store with the fewest calls.
- Flow size: generated ring flows (bench/flowgen.py) of 10, 1 000 and 10 000 nodes, a server on
  each; per-decision latency at concurrency 1 (the ring script), against the smallest flow.
- Flow load: `load_flow_file` (parse + validate) against libyaml's parse of the same text
  (yaml.CSafeLoader; the pure-Python SafeLoader when libyaml is missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.context import Context, cpu_per_request_us, describe_run, redis_unavailable
from bench.driver import LoadGenerator
from bench.flowgen import write_ring_flow
from bench.loadgen import RunSpec
from bench.populate import fill_url, populate
from bench.procs import Child, launch, running, server_argv
from bench.results import Figure, Ratio, RunResult, Summary, Table, Target, fmt, fmt_bytes, median
from server.engine.loader import load_flow_file
from server.store import open_store
from tests.support.redis_server import start_redis

GROWTH_TARGET = Target("<=", 1.2)
_LATENCY_WARMUP_S = 0.3


@dataclass(frozen=True, slots=True)
class _Target:
    group: str  # "SQLite", "Redis" or "flow"
    size: int  # active calls or flow nodes
    child: Child
    script: str
    selector: str


async def _fill(url: str, calls: int, prefix: str) -> float:
    store = open_store(fill_url(url))
    try:
        return await populate(store, calls, 1, prefix)
    finally:
        await store.close()


def _time_load(path: Path, budget_s: float, repeats: int) -> tuple[float, float, int]:
    """Median seconds of load_flow_file and of the baseline parse, and how many runs."""
    text = path.read_text(encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loads: list[float] = []
    parses: list[float] = []
    began = time.perf_counter()
    while len(loads) < repeats and (not loads or time.perf_counter() - began < budget_s):
        start = time.perf_counter()
        load_flow_file(path)
        loads.append(time.perf_counter() - start)
        start = time.perf_counter()
        yaml.load(text, Loader=loader)
        parses.append(time.perf_counter() - start)
    return statistics.median(loads), statistics.median(parses), len(loads)


def run(ctx: Context) -> Figure:
    config = ctx.config
    figure = Figure("3", "Growth: active calls in the store, flow size, flow load time")
    scratch = ctx.scratch("fig3")
    population = Table(
        "Store population through the store API", ["store", "calls", "seconds", "calls/s"]
    )
    with contextlib.ExitStack() as stack:
        # Flow servers first: a big flow loads while the stores fill.
        flow_children: dict[int, Child] = {}
        for nodes in config.flow_sizes:
            directory = scratch / f"flow-{nodes}"
            write_ring_flow(directory, nodes)
            flow_children[nodes] = launch(
                f"fig3-flow-{nodes}",
                server_argv(f"sqlite://{directory / 'dialogue.db'}", flows=directory),
                ctx.log_dir,
            )
        for child in flow_children.values():
            stack.callback(child.stop)
        stores: dict[str, dict[int, str]] = {
            "SQLite": {n: f"sqlite://{scratch / f'calls-{n}.db'}" for n in config.active_calls}
        }
        reason = redis_unavailable()
        if reason is None:
            stores["Redis"] = {
                n: stack.enter_context(start_redis(ctx.scratch(f"fig3-redis-{n}"))).url
                for n in config.active_calls
            }
        else:
            figure.notes.append(f"Redis not measured: {reason}.")
        for group, urls in stores.items():
            for calls, url in urls.items():
                seconds = asyncio.run(_fill(url, calls, f"active{calls}"))
                population.rows.append(
                    [
                        group,
                        f"{calls:,}",
                        fmt(seconds, 2),
                        fmt(calls / seconds, 0) if calls >= 1000 else "",
                    ]
                )
                ctx.say(f"fig 3 populated {group} with {calls:,} calls in {seconds:.1f} s")
        targets = [
            _Target(
                group,
                calls,
                launch(f"fig3-{group}-{calls}", server_argv(url), ctx.log_dir),
                "carrier",
                "10086",
            )
            for group, urls in stores.items()
            for calls, url in urls.items()
        ] + [
            _Target("flow", nodes, child, "ring", "ring") for nodes, child in flow_children.items()
        ]
        stack.enter_context(running(*(t.child for t in targets)))
        flow_rss = {nodes: child.rss_bytes() for nodes, child in flow_children.items()}
        load = stack.enter_context(LoadGenerator(ctx.log_dir))
        results: dict[tuple[str, int], list[RunResult]] = defaultdict(list)
        cpu: dict[tuple[str, int], list[float]] = defaultdict(list)
        for repeat in range(config.repeats):
            shift = repeat % len(targets)
            for target in targets[shift:] + targets[:shift]:
                before = target.child.cpu_seconds()
                result = load.run(
                    RunSpec(
                        kind="grpc",
                        target=target.child.address,
                        concurrency=1,
                        duration_s=config.latency_duration_s,
                        warmup_s=min(_LATENCY_WARMUP_S, config.warmup_s),
                        max_requests=config.max_requests,
                        prefix=ctx.prefix("s"),
                        script=target.script,
                        selector=target.selector,
                    )
                )
                target.child.check_alive()
                key = (target.group, target.size)
                results[key].append(result)
                cpu[key].append(cpu_per_request_us(target.child, before, result))
                ctx.say(describe_run(f"fig 3 {target.group} {target.size:,}", result))

    latency = Table(
        "Per-decision latency at concurrency 1 (medians)",
        [
            "what grows",
            "size",
            "p50 (ms)",
            "p99 (ms)",
            "mean (ms)",
            "server CPU per request (µs)",
            "server RSS",
            "errors",
        ],
    )
    for (group, size), runs in results.items():
        s = Summary.of(runs)
        latency.rows.append(
            [
                "flow nodes" if group == "flow" else f"active calls, {group}",
                f"{size:,}",
                fmt(s.p50_ms, 3),
                fmt(s.p99_ms, 3),
                fmt(s.mean_ms, 3),
                fmt(median(cpu[group, size]), 0),
                fmt_bytes(flow_rss[size]) if group == "flow" else "",
                str(s.errors),
            ]
        )
    for group in [*stores, "flow"]:
        sizes = config.flow_sizes if group == "flow" else config.active_calls
        base = Summary.of(results[group, sizes[0]])
        for size in sizes[1:]:
            s = Summary.of(results[group, size])
            what = f"{size:,}-node flow" if group == "flow" else f"{group}, {size:,} active calls"
            base_what = f"{sizes[0]:,} nodes" if group == "flow" else f"{sizes[0]:,} call(s)"
            figure.ratios.append(
                Ratio(
                    f"{what}: p50 per decision",
                    s.p50_ms,
                    base.p50_ms,
                    "ms",
                    base_what,
                    GROWTH_TARGET,
                )
            )

    loads = Table(
        "Flow load + validate (load_flow_file) against a libyaml parse of the same text",
        ["nodes", "file", "load + validate (ms)", "per node (µs)", "libyaml parse (ms)", "runs"],
    )
    for nodes in config.flow_sizes:
        path = scratch / f"flow-{nodes}" / "ring.yaml"
        took, parsed, count = _time_load(path, config.load_budget_s, config.repeats)
        loads.rows.append(
            [
                f"{nodes:,}",
                fmt_bytes(path.stat().st_size),
                fmt(took * 1000, 1),
                fmt(took / nodes * 1e6, 0),
                fmt(parsed * 1000, 1),
                str(count),
            ]
        )
        figure.ratios.append(
            Ratio(
                f"{nodes:,}-node flow: load + validate time",
                took * 1000,
                parsed * 1000,
                "ms",
                "libyaml parse",
            )
        )
        ctx.say(f"fig 3 flow of {nodes:,} nodes loads in {took * 1000:.0f} ms")
    figure.tables += [latency, loads, population]
    return figure
