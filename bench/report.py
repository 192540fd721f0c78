"""Writes the bench's results: `benchmarks.md` (tables) and `benchmarks.png` (the ratios)."""

from __future__ import annotations

import math
import textwrap
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from bench.results import Figure, Ratio, Table, fmt, fmt_bytes
from bench.runner import BenchResult

MARKDOWN = "benchmarks.md"
PLOT = "benchmarks.png"
BUSY_CPUS = 0.25
_LABEL_WIDTH = 60
_TICKS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50)


def _value(value: float, unit: str) -> str:
    if unit == "B":
        return fmt_bytes(value)
    if unit == "ms":
        return f"{fmt(value, 3 if value < 10 else 1)} ms"
    return f"{fmt(value, 0)} {unit}"


def _verdict(ratio: Ratio) -> str:
    if ratio.met is None:
        return ""
    return "met" if ratio.met else "**missed**"


def _table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.columns) + " |"]
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return [*lines, ""]


def _busy_warning(others_cpu: float, what: str) -> list[str]:
    if others_cpu < BUSY_CPUS:
        return []
    return [
        f"> **Warning:** other processes used {others_cpu:.2f} CPUs on average during {what}: "
        "the machine was not quiet, and ratios are noisier than they should be. Run the bench "
        "again on an idle machine.",
        "",
    ]


def _ratio_table(figures: list[Figure], *, targets_only: bool) -> list[str]:
    columns = ["figure", "measured", "value", "baseline", "ratio", "target", "verdict"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for figure in figures:
        for r in figure.ratios:
            if targets_only and r.target is None:
                continue
            lines.append(
                f"| {figure.key} | {r.label} | {_value(r.value, r.unit)} | "
                f"{_value(r.baseline, r.unit)} ({r.baseline_label}) | {r.ratio:.2f}× | "
                f"{r.target or ''} | {_verdict(r)} |"
            )
    return [*lines, ""]


# What changed and what each lever bought: written by hand (the bench cannot know why), kept
# beside the code that measures it and copied into every report.
LEVERS = Path(__file__).with_name("levers.md")


def _levers() -> list[str]:
    if not LEVERS.exists():
        return []
    return [LEVERS.read_text(encoding="utf-8").rstrip(), ""]


def markdown(result: BenchResult, plot_name: str = PLOT) -> str:
    config = result.config
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python -m bench` (`make bench`) on {when}, in {result.seconds / 60:.1f} "
        "minutes. Do not edit by hand: run the bench again. `python -m bench --help` lists its "
        "options; the code is in `bench/`.",
        "",
        "Every figure is a **ratio to a baseline measured in the same run** on the same machine, "
        "so that the machine's speed cancels out. Each number is the median of "
        f"{config.repeats} runs; a load run is {config.warmup_s:g} s of warm-up, then a "
        f"{config.duration_s:g} s window (also bounded at {config.max_requests:,} requests), "
        "from closed-loop clients in a load-generator process of their own, on 127.0.0.1 only. "
        "Every call is a scripted dialogue with fresh ids (never a retry answered from the turn "
        "log): the carrier line's six events, from call start to goodbye.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in result.machine.items()],
        f"| other processes during the bench | {result.others_cpu:.2f} CPUs on average |",
        "",
        *_busy_warning(result.others_cpu, "the bench"),
        "## Targets",
        "",
        *_ratio_table(result.figures, targets_only=True),
        f"![The ratios of every figure]({plot_name})",
        "",
        *_levers(),
    ]
    for key, error in result.errors.items():
        last = error.strip().splitlines()[-1] if error.strip() else "unknown error"
        lines += [f"**Figure {key} failed:** `{last}`", ""]
    for figure in result.figures:
        lines += [f"## {figure.key}. {figure.title}", ""]
        if figure.ratios:
            lines += _ratio_table([figure], targets_only=False)
        for table in figure.tables:
            lines += _table(table)
        lines += [f"- {note}" for note in figure.notes]
        if figure.notes:
            lines.append("")
        lines += [
            f"_Took {figure.seconds:.0f} s; other processes used {figure.others_cpu:.2f} CPUs "
            "meanwhile._",
            "",
        ]
    return "\n".join(lines).rstrip() + "\n"


def plot(result: BenchResult, path: Path) -> None:
    """One panel per figure: each ratio as a bar on a log axis, 1× and the targets marked."""
    figures = [f for f in result.figures if f.ratios]
    heights = [max(2, len(f.ratios)) * 0.3 + 0.7 for f in figures] or [1.0]
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(11, sum(heights) + 0.8),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
        layout="constrained",
    )
    for ax, figure in zip(axes[:, 0], figures, strict=False):
        ratios = [r for r in figure.ratios if not math.isnan(r.ratio) and r.ratio > 0]
        labels = [textwrap.fill(f"{r.label} (vs {r.baseline_label})", _LABEL_WIDTH) for r in ratios]
        values = [r.ratio for r in ratios]
        colors = [
            "#9e9e9e" if r.met is None else ("#2e7d32" if r.met else "#c62828") for r in ratios
        ]
        positions = list(range(len(ratios)))
        ax.barh(positions, values, color=colors, height=0.6)
        for position, r in zip(positions, ratios, strict=True):
            ax.annotate(
                f"{r.ratio:.2f}×",
                (r.ratio, position),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
            if r.target is not None:
                ax.plot(
                    [r.target.bound] * 2, [position - 0.4, position + 0.4], color="black", lw=1.5
                )
        ax.axvline(1.0, color="#424242", lw=0.8, ls="--")
        ax.set_xscale("log")
        low = min([*values, *(r.target.bound for r in ratios if r.target)], default=1.0)
        high = max([*values, *(r.target.bound for r in ratios if r.target)], default=1.0)
        ax.set_xlim(min(0.5, low / 1.6), max(2.0, high * 1.8))
        ax.xaxis.set_major_locator(FixedLocator(list(_TICKS)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}×"))
        ax.set_yticks(positions)
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{figure.key}. {figure.title}", fontsize=9, loc="left")
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(
        "dialogue benchmarks — ratio to the same-run baseline (green: target met, red: missed, "
        "grey: no target; black tick: target)",
        fontsize=9,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: BenchResult, out_dir: Path) -> tuple[Path, Path]:
    """Writes benchmarks.md and benchmarks.png into out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, png_path = out_dir / MARKDOWN, out_dir / PLOT
    plot(result, png_path)
    md_path.write_text(markdown(result, PLOT), encoding="utf-8")
    return md_path, png_path
