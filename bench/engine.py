"""The pure engine per decision, and the same engine of an earlier commit in the same run.

What is measured: the interpreter deciding the carrier script's six turns (flows/carrier-zh.yaml,
bench.workload's requests) call after call — state in, response and state out; no gRPC, no
store, no validation, no logging. Two figures per decision, in process CPU time:

- decide: `interpreter.decide` alone (the engine's own cost; issue 18's target is 40 µs);
- with the state codec: `state.decode` before and `state.encode` after each decision and the
  response serialised, which is what the service adds around the engine for every turn.

Before/after in one run: `--against REV` extracts the engine of commit REV (with the packages
it imports and its demo flows, via `git archive`) into a scratch directory and measures it the
same way in a child process, taking turns with the engine of the working tree. The default REV
is the commit before this round's engine levers. `make bench` runs it as figure 6.

    python -m bench.engine [--calls N] [--rounds N] [--against REV]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from bench.context import Context
from bench.results import Figure, Ratio, Table, Target, fmt
from bench.workload import CARRIER_SELECTOR, SCRIPTS, decide_request
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.engine.interpreter import decide
from server.engine.state import decode, encode

REPO_ROOT = Path(__file__).resolve().parent.parent
# The engine before issue 18's engine levers (bench/levers.md, "Lever: the engine …").
BEFORE_REV = "776cbc6"
# What an engine needs of its tree: its packages, their generated code and the demo flows.
_TREE = ("server", "common", "telemetry", "gen", "flows")
BUDGET_US = 40.0
BUDGET_TARGET = Target("<=", 1.0)
_BUDGET_LABEL = "40 µs budget"
# Calls per measurement at `make bench`'s duration (2 s); smaller runs scale it down.
CALLS = 1000
_FULL_DURATION_S = 2.0
# Measurements per child process, after a warm-up. The child's figure is the least of them:
# the work is the same every time, and other processes' load only ever adds to its CPU time.
_MEASUREMENTS = 5


@dataclass(frozen=True, slots=True)
class Cost:
    """Process CPU time per decision, in microseconds."""

    decide_us: float
    codec_us: float


def measure(calls: int) -> Cost:
    """The engine importable here, over `calls` carrier calls: the least of a few measurements."""
    flow = load_catalog(DEMO_FLOWS).resolve(CARRIER_SELECTOR)
    steps = len(SCRIPTS["carrier"])
    requests = [
        [decide_request("carrier", f"engine-{i}", step) for step in range(steps)]
        for i in range(max(1, calls))
    ]
    decisions = len(requests) * steps

    def engine_alone() -> None:
        for call in requests:
            state = None
            for request in call:
                state = decide(flow, state, request).state

    def with_codec() -> None:
        for call in requests:
            blob = None
            for request in call:
                decision = decide(flow, None if blob is None else decode(blob), request)
                blob = encode(decision.state)
                decision.response.SerializeToString()

    def per_decision(run: object) -> float:
        assert callable(run)
        started = time.process_time()
        run()
        return (time.process_time() - started) / decisions * 1e6

    engine_alone()  # warm-up: imports, the flow's first-use caches, the allocator
    with_codec()
    alone = [per_decision(engine_alone) for _ in range(_MEASUREMENTS)]
    codec = [per_decision(with_codec) for _ in range(_MEASUREMENTS)]
    return Cost(min(alone), min(codec))


def extract(rev: str, into: Path) -> None:
    """The tree an engine of commit `rev` needs, written under `into`.

    Raises:
        RuntimeError: git cannot produce it (not a clone, a shallow one, an unknown rev).
    """
    archive = subprocess.run(
        ["git", "archive", "--format=tar", rev, *_TREE],
        cwd=REPO_ROOT,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise RuntimeError(
            f"git archive {rev} failed: {archive.stderr.decode(errors='replace').strip()}"
        )
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")


def measure_in_child(calls: int, tree: Path | None) -> Cost:
    """`measure` in a fresh process: of the working tree, or of an extracted one (`extract`),
    whose packages then come first on the path (the child's working directory)."""
    env = dict(os.environ)
    cwd = REPO_ROOT
    if tree is not None:
        cwd = tree
        env["PYTHONPATH"] = os.pathsep.join([str(tree / "gen" / "python"), str(REPO_ROOT)])
    child = subprocess.run(
        [sys.executable, "-m", "bench.engine", "--child", "--calls", str(calls)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        raise RuntimeError(f"engine measurement failed:\n{child.stderr.strip()}")
    figures = json.loads(child.stdout)
    return Cost(figures["decide_us"], figures["codec_us"])


def compare(calls: int, rounds: int, before_rev: str | None) -> tuple[Cost, Cost | None]:
    """Medians of `rounds` child measurements of the working tree and, taking turns with it,
    of the engine of `before_rev` (None: not measured)."""
    after: list[Cost] = []
    before: list[Cost] = []
    with tempfile.TemporaryDirectory(prefix="dialogue-engine-") as scratch:
        tree = None
        if before_rev is not None:
            tree = Path(scratch)
            extract(before_rev, tree)
        for _ in range(max(1, rounds)):
            if tree is not None:
                before.append(measure_in_child(calls, tree))
            after.append(measure_in_child(calls, None))
    return _median(after), (_median(before) if before else None)


def _median(costs: Sequence[Cost]) -> Cost:
    return Cost(
        statistics.median(c.decide_us for c in costs), statistics.median(c.codec_us for c in costs)
    )


def run(ctx: Context) -> Figure:
    """Figure 6: the pure engine per decision against its budget, and against the engine of
    BEFORE_REV measured in the same run."""
    config = ctx.config
    calls = max(20, round(CALLS * min(1.0, config.duration_s / _FULL_DURATION_S)))
    figure = Figure("6", "The pure engine per decision (carrier script, no gRPC, no store)")
    try:
        after, before = compare(calls, config.repeats, BEFORE_REV)
    except RuntimeError as exc:
        figure.notes.append(f"The engine of {BEFORE_REV} was not measured: {exc}")
        after, before = compare(calls, config.repeats, None)
    ctx.say(
        f"engine: decide {after.decide_us:.1f} µs, with the state codec {after.codec_us:.1f} µs"
    )
    figure.ratios.append(
        Ratio(
            "pure engine: CPU per decision",
            after.decide_us,
            BUDGET_US,
            "µs",
            _BUDGET_LABEL,
            BUDGET_TARGET,
        )
    )
    table = Table("CPU per decision (µs)", ["engine", "decide", "decide + state codec"])
    if before is not None:
        figure.ratios += [
            Ratio(
                "pure engine now: CPU per decision",
                after.decide_us,
                before.decide_us,
                "µs",
                f"engine of {BEFORE_REV}",
            ),
            Ratio(
                "engine + state codec now: CPU per decision",
                after.codec_us,
                before.codec_us,
                "µs",
                f"engine of {BEFORE_REV}",
            ),
        ]
        table.rows.append([f"of {BEFORE_REV}", fmt(before.decide_us), fmt(before.codec_us)])
    table.rows.append(["working tree", fmt(after.decide_us), fmt(after.codec_us)])
    figure.tables.append(table)
    figure.notes.append(
        f"{calls:,} carrier calls (six decisions each) per measurement; each figure is the median "
        f"of {config.repeats} child processes, the two engines taking turns, each child's the "
        f"least of {_MEASUREMENTS} measurements after a warm-up (other processes' load only adds "
        "to a measurement). The codec column adds `state.decode` and `state.encode` around each "
        "decision and serialises the response."
    )
    return figure


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__)
    parser.add_argument("--calls", type=int, default=CALLS, help="carrier calls per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="child processes per engine")
    parser.add_argument(
        "--against", metavar="REV", default=BEFORE_REV, help="the earlier engine's commit"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        cost = measure(args.calls)
        print(json.dumps({"decide_us": cost.decide_us, "codec_us": cost.codec_us}))
        return
    after, before = compare(args.calls, args.rounds, args.against)
    assert before is not None
    for label, was, now in (
        ("decide", before.decide_us, after.decide_us),
        ("decide + state codec", before.codec_us, after.codec_us),
    ):
        print(
            f"pure engine, {label}: {was:.1f} µs ({args.against}) → {now:.1f} µs "
            f"(working tree), {now / was:.2f}× per decision"
        )


if __name__ == "__main__":
    main()
