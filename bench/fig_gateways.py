"""Figure 2: each gateway's chain against the bare HTTP stack forwarding to the echo servicer.

Per vendor with a script in bench/vendors.py, three HTTP targets take the same requests from a
separate load-generator process (bench.loadgen, or wrk with --http-load wrk):

- the chain: `dialogue-gateway VENDOR` → `dialogue-server` (SQLite), as deployed;
- the gateway alone: `dialogue-gateway VENDOR` → the echo servicer (the server's share removed);
- the baseline: bench/bare.py (FastAPI/uvicorn, no mapping) → the echo servicer.

Telnyx's gateway answers a webhook by sending Call Control commands, so each of its three
targets gets a fake API of its own (bench/fake_telnyx.py, a child on 127.0.0.1) and its bare
baseline sends the same commands to it (`bench.bare --api`): both sides of the ratio make the
same outbound HTTP requests. The load generator signs every webhook. After the runs, the fakes'
counts are checked against the gateways' own (nothing lost, nothing sent twice).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections import defaultdict
from typing import Any

from bench import wrk
from bench.context import Context, cpu_per_request_us, describe_run
from bench.driver import LoadGenerator
from bench.loadgen import RunSpec
from bench.procs import Child, bare_argv, echo_argv, gateway_argv, launch, running, server_argv
from bench.results import Figure, Ratio, RunResult, Summary, Table, Target, fmt, median
from bench.vendors import TELNYX, script, telnyx_env
from gateways.telnyx.routes import METRICS_PATH as TELNYX_METRICS_PATH
from gateways.vendors import VENDORS

CHAIN_TARGET = Target(">=", 0.6)


def _fallbacks(gateway: Child) -> int:
    """Decisions the gateway answered with its fallback, from its /readyz."""
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(f"http://{gateway.address}/readyz", timeout=10) as answer,
    ):
        return sum(json.load(answer).get("fallbacks", {}).values())
    return -1


def _get_json(address: str, path: str) -> dict[str, Any]:
    """A JSON object from one of the children ({} when it cannot be had)."""
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(f"http://{address}{path}", timeout=10) as answer,
    ):
        document = json.load(answer)
        return document if isinstance(document, dict) else {}
    return {}


def _telnyx_check(gateways: dict[str, Child], apis: dict[str, Child]) -> list[str]:
    """Notes comparing what each Telnyx gateway sent with what its fake API executed."""
    notes = []
    for kind, gateway in gateways.items():
        api = _get_json(apis[kind].address, "/stats")
        counted = _get_json(gateway.address, TELNYX_METRICS_PATH)
        commands = counted.get("commands")
        webhooks = counted.get("webhooks")
        commands = commands if isinstance(commands, dict) else {}
        webhooks = webhooks if isinstance(webhooks, dict) else {}
        accepted = int(commands.get("accepted", 0))
        executed = int(api.get("executed", 0))
        lost = sum(int(v) for k, v in commands.items() if k in ("failed", "refused"))
        unacknowledged = sum(int(v) for k, v in webhooks.items() if k.startswith("unack"))
        verdict = (
            "nothing lost"
            if accepted == executed and not lost and not unacknowledged
            else "**commands lost or repeated**"
        )
        notes.append(
            f"telnyx {kind}: the fake API executed {executed:,} commands "
            f"({int(api.get('duplicates', 0)):,} repeats ignored, "
            f"{int(api.get('refused', 0)):,} refused); the gateway counted {accepted:,} "
            f"accepted, {lost:,} failed or refused, {unacknowledged:,} webhooks unacknowledged: "
            f"{verdict}."
        )
    return notes


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
    if use_wrk and TELNYX in measured:
        figure.notes.append(
            "Telnyx's webhooks are signed as they are sent: bench.loadgen sent them."
        )
    with contextlib.ExitStack() as stack:
        echo = launch("fig2-echo", echo_argv(), ctx.log_dir)
        server = launch(
            "fig2-server", server_argv(f"sqlite://{scratch / 'dialogue.db'}"), ctx.log_dir
        )
        stack.enter_context(running(echo, server))
        # Telnyx: a fake Call Control API for each of its targets (their counts stay apart).
        apis: dict[str, Child] = {}
        if TELNYX in measured:
            kinds = ["bare", "chain", *(["gateway alone"] if config.gateway_alone else [])]
            apis = {
                kind: launch(f"fig2-telnyx-api-{kind}", ["-m", "bench.fake_telnyx"], ctx.log_dir)
                for kind in kinds
            }
            stack.enter_context(running(*apis.values()))

        def env_of(vendor: str, kind: str) -> dict[str, str] | None:
            return telnyx_env(f"http://{apis[kind].address}/v2") if vendor == TELNYX else None

        bare = launch("fig2-bare", bare_argv(echo.address), ctx.log_dir)
        bares = dict.fromkeys(measured, bare)
        if TELNYX in measured:
            bares[TELNYX] = launch(
                "fig2-bare-telnyx",
                [*bare_argv(echo.address), "--api", f"http://{apis['bare'].address}/v2"],
                ctx.log_dir,
            )
        chains: dict[str, Child] = {}
        alone: dict[str, Child] = {}
        for vendor in measured:
            chains[vendor] = launch(
                f"fig2-{vendor}",
                gateway_argv(vendor, server.address),
                ctx.log_dir,
                env_of(vendor, "chain"),
            )
            if config.gateway_alone:
                alone[vendor] = launch(
                    f"fig2-{vendor}-echo",
                    gateway_argv(vendor, echo.address),
                    ctx.log_dir,
                    env_of(vendor, "gateway alone"),
                )
        distinct_bares = list({child.name: child for child in bares.values()}.values())
        stack.enter_context(running(*distinct_bares, *chains.values(), *alone.values()))
        load = stack.enter_context(LoadGenerator(ctx.log_dir))
        results: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
        cpu: dict[tuple[str, str], list[float]] = defaultdict(list)
        for repeat in range(config.repeats):
            for vendor, targets in measured.items():
                runs = [("bare", bares[vendor]), ("chain", chains[vendor])]
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
                        http_signer=TELNYX if vendor == TELNYX else "",
                    )
                    before = child.cpu_seconds()
                    # wrk cannot sign webhooks: Telnyx's runs always use bench.loadgen.
                    signed = bool(spec.http_signer)
                    result = wrk.run(spec, scratch) if use_wrk and not signed else load.run(spec)
                    child.check_alive()
                    results[vendor, kind].append(result)
                    cpu[vendor, kind].append(cpu_per_request_us(child, before, result))
                    ctx.say(describe_run(f"fig 2 {vendor} {kind}", result))
        fallbacks = {vendor: _fallbacks(chains[vendor]) for vendor in measured}
        if TELNYX in measured:
            telnyx_gateways = {"chain": chains[TELNYX]}
            if TELNYX in alone:
                telnyx_gateways["gateway alone"] = alone[TELNYX]
            figure.notes += _telnyx_check(telnyx_gateways, apis)

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
    # Telnyx's rows name the Call Control API call each of them makes.
    telnyx_labels = {kind: f"{label} + fake Call Control API" for kind, label in labels.items()}
    for vendor in measured:
        summaries = {kind: Summary.of(results[vendor, kind]) for kind in labels}
        for kind, label in (telnyx_labels if vendor == TELNYX else labels).items():
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
        baseline = "bare → echo + API" if vendor == TELNYX else "bare → echo"
        figure.ratios += [
            Ratio(
                f"{vendor} chain: throughput",
                summaries["chain"].throughput,
                bare_s.throughput,
                "req/s",
                baseline,
                CHAIN_TARGET,
            ),
            Ratio(
                f"{vendor} chain: p99 latency",
                summaries["chain"].p99_ms,
                bare_s.p99_ms,
                "ms",
                baseline,
            ),
        ]
        if "gateway alone" in summaries:
            figure.ratios.append(
                Ratio(
                    f"{vendor} gateway alone (→ echo): throughput",
                    summaries["gateway alone"].throughput,
                    bare_s.throughput,
                    "req/s",
                    baseline,
                )
            )
        if fallbacks[vendor]:
            figure.notes.append(
                f"{vendor}: the gateway answered {fallbacks[vendor]} requests with its fallback"
                " (-1: could not ask /readyz)."
            )
    figure.tables.append(table)
    return figure
