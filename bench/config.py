"""How big the bench is: the full configuration (`make bench`) and the tiny one of the smoke test."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

FIGURES = ("1", "2", "3", "4", "5", "6")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Every knob of a bench run.

    Attributes:
        figures: Which figures to run ("1" … "6").
        out_dir: Where benchmarks.md and benchmarks.png are written.
        work_dir: Scratch space (databases, flows, logs); a temporary directory when None.
        repeats: Runs per configuration; figures report the median.
        duration_s: Measurement window of one load run.
        warmup_s: Warm-up before the window of one load run.
        max_requests: Count bound of one load run's window.
        concurrencies: Figure 1: concurrent calls.
        gateway_concurrency: Figure 2: concurrent HTTP connections.
        gateway_alone: Figure 2: also measure each gateway in front of the echo servicer.
        vendors: Figure 2: the vendors to measure; None for every vendor with a script.
        http_load: Figure 2: "python" (bench.loadgen) or "wrk" (needs wrk on PATH; integer
            seconds, so duration and warm-up are rounded up to whole seconds).
        active_calls: Figure 3: calls pre-populated in the store.
        flow_sizes: Figure 3: nodes of the generated flows.
        latency_duration_s: Figure 3: window of one per-decision latency run (concurrency 1).
        load_budget_s: Figure 3: flow load timings repeat until this is spent (at least once).
        memory_calls: Figure 4: calls written to measure bytes per call.
        memory_turns: Figure 4: turns per call written (an active call, mid-dialogue).
        scaling_concurrency: Figure 5: concurrent calls.
        scaling_channels: Figure 5: client connections (spread over workers by the kernel).
        profile: Also profile (py-spy) the decide path and the aliyun-ivr chain.

        profile_s: Length of each profile.
    """

    figures: tuple[str, ...] = FIGURES
    out_dir: Path = Path("docs")
    work_dir: Path | None = None
    repeats: int = 3
    duration_s: float = 2.0
    warmup_s: float = 0.5
    max_requests: int = 200_000
    concurrencies: tuple[int, ...] = (1, 16, 64)
    gateway_concurrency: int = 16
    gateway_alone: bool = True
    vendors: tuple[str, ...] | None = None
    http_load: Literal["python", "wrk"] = "python"
    active_calls: tuple[int, ...] = (1, 10_000, 100_000)
    flow_sizes: tuple[int, ...] = (10, 1_000, 10_000)
    latency_duration_s: float = 1.5
    load_budget_s: float = 4.0
    memory_calls: int = 5_000
    memory_turns: int = 3
    scaling_concurrency: int = 64
    scaling_channels: int = 8
    profile: bool = False
    profile_s: float = 6.0

    @property
    def run_s(self) -> float:
        """Wall time of one load run."""
        return self.warmup_s + self.duration_s

    def tiny(self) -> BenchConfig:
        """The smoke test's configuration: every code path, in a few seconds, timings meaningless."""
        return replace(
            self,
            repeats=1,
            duration_s=0.2,
            warmup_s=0.05,
            max_requests=400,
            concurrencies=(1, 4),
            gateway_concurrency=2,
            gateway_alone=False,
            vendors=("aliyun-ivr", "telnyx"),
            http_load="python",
            active_calls=(1, 30),
            flow_sizes=(10, 30),
            latency_duration_s=0.15,
            load_budget_s=0.05,
            memory_calls=30,
            memory_turns=2,
            scaling_concurrency=4,
            scaling_channels=2,
            profile=False,
        )
