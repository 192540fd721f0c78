"""Runs the figures of a configuration and writes the report."""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import engine as fig_engine
from bench import fig_decide, fig_gateways, fig_growth, fig_memory, fig_scaling, machine, profiling
from bench.config import BenchConfig
from bench.context import Context
from bench.results import Figure

FIGURE_RUNNERS: dict[str, Callable[[Context], Figure]] = {
    "1": fig_decide.run,
    "2": fig_gateways.run,
    "3": fig_growth.run,
    "4": fig_memory.run,
    "5": fig_scaling.run,
    "6": fig_engine.run,
}


@dataclass(slots=True)
class BenchResult:
    """Everything a bench run produced."""

    config: BenchConfig
    machine: dict[str, str]
    figures: list[Figure] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # figure key → traceback
    seconds: float = 0.0
    others_cpu: float = 0.0  # CPUs the machine's other processes used meanwhile, on average


def _run_figure(ctx: Context, key: str, runner: Callable[[Context], Figure]) -> Figure | str:
    """The figure, or the traceback of its failure."""
    ctx.say(f"figure {key} …")
    started = time.perf_counter()
    mark = machine.CpuMark.now()
    try:
        figure = runner(ctx)
    except Exception:
        error = traceback.format_exc()
        ctx.say(f"figure {key} FAILED:\n{error}")
        return error
    figure.seconds = time.perf_counter() - started
    figure.others_cpu = machine.CpuMark.now().others_since(mark)
    ctx.say(
        f"figure {key} done in {figure.seconds:.0f} s "
        f"(other processes used {figure.others_cpu:.2f} CPUs meanwhile)"
    )
    return figure


def run_bench(config: BenchConfig, *, quiet: bool = False) -> BenchResult:
    """Runs every configured figure (a failing figure is recorded, the others still run)."""
    result = BenchResult(config, machine.describe())
    began = time.perf_counter()
    first = machine.CpuMark.now()
    with tempfile.TemporaryDirectory(prefix="dialogue-bench-") as temporary:
        work_dir = config.work_dir or Path(temporary)
        ctx = Context(config, work_dir, quiet=quiet)
        ctx.say("machine: " + "; ".join(f"{k} {v}" for k, v in result.machine.items()))
        runners = {key: FIGURE_RUNNERS[key] for key in config.figures}
        if config.profile:
            runners["P"] = profiling.run
        outcomes = {key: _run_figure(ctx, key, runner) for key, runner in runners.items()}
        for key, outcome in outcomes.items():
            if isinstance(outcome, Figure):
                result.figures.append(outcome)
            else:
                result.errors[key] = outcome
    result.seconds = time.perf_counter() - began
    result.others_cpu = machine.CpuMark.now().others_since(first)
    return result
