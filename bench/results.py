"""What the figures produce: ratio rows against targets, raw tables and notes."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class Target:
    """A bound on a ratio: `ratio >= bound` (op ">=") or `ratio <= bound` (op "<=")."""

    op: Literal[">=", "<="]
    bound: float

    def met(self, ratio: float) -> bool:
        return ratio >= self.bound if self.op == ">=" else ratio <= self.bound

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.bound:g}×"


@dataclass(frozen=True, slots=True)
class Ratio:
    """One figure: a value measured against a baseline measured in the same run.

    Attributes:
        label: What was measured, e.g. "SQLite, 64 concurrent: throughput".
        value: The measurement.
        baseline: The baseline's measurement, in the same unit.
        unit: The unit of value and baseline.
        baseline_label: What the baseline is, e.g. "echo".
        target: The target the ratio is held to, if any.
    """

    label: str
    value: float
    baseline: float
    unit: str
    baseline_label: str
    target: Target | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else math.nan

    @property
    def met(self) -> bool | None:
        """None when there is no target (or nothing to compare)."""
        if self.target is None or math.isnan(self.ratio):
            return None
        return self.target.met(self.ratio)


@dataclass(slots=True)
class Table:
    """Raw measurements behind a figure, for the report."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass(slots=True)
class Figure:
    """One figure of the bench: its ratios, the raw tables and notes (skips, caveats)."""

    key: str
    title: str
    ratios: list[Ratio] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    others_cpu: float = 0.0  # CPUs other processes of the machine used meanwhile, on average


@dataclass(frozen=True, slots=True)
class RunResult:
    """One closed-loop run, as the load generator reports it.

    Attributes:
        completed: Requests completed inside the measurement window.
        total: Requests completed in all, warm-up and stragglers included.
        errors: Failed requests by reason (gRPC status name or HTTP status), whole run.
        window_s: The measurement window: after the warm-up, until the time or count bound.
        throughput: completed / window_s, requests per second.
        p50_ms: Median latency inside the window.
        p99_ms: 99th-percentile latency inside the window.
        mean_ms: Mean latency inside the window.
        client_cpu: The load generator's CPU time over the window, in cores (1.0 = one core).
    """

    completed: int
    total: int
    errors: dict[str, int]
    window_s: float
    throughput: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    client_cpu: float


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values; NaN when there are none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def median(values: Sequence[float]) -> float:
    """The median, NaN for no values (a run that measured nothing)."""
    finite = [v for v in values if not math.isnan(v)]
    return statistics.median(finite) if finite else math.nan


@dataclass(frozen=True, slots=True)
class Summary:
    """The medians of repeated runs of one configuration, with errors summed."""

    runs: int
    throughput: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    client_cpu: float
    errors: int
    completed: int

    @staticmethod
    def of(results: Sequence[RunResult]) -> Summary:
        return Summary(
            runs=len(results),
            throughput=median([r.throughput for r in results]),
            p50_ms=median([r.p50_ms for r in results]),
            p99_ms=median([r.p99_ms for r in results]),
            mean_ms=median([r.mean_ms for r in results]),
            client_cpu=median([r.client_cpu for r in results]),
            errors=sum(sum(r.errors.values()) for r in results),
            completed=sum(r.completed for r in results),
        )


def fmt(value: float, digits: int = 1) -> str:
    """A number for a table: thousands separated, NaN as "n/a"."""
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def fmt_bytes(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"
