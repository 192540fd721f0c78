"""What every figure gets: the configuration, scratch space, unique call-id prefixes, progress."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import BenchConfig
from bench.procs import Child
from bench.results import RunResult
from server.store import open_store


@dataclass
class Context:
    """Shared by the figures of one bench run."""

    config: BenchConfig
    work_dir: Path
    quiet: bool = False
    _counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    def scratch(self, name: str) -> Path:
        path = self.work_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def prefix(self, label: str) -> str:
        """A call-id prefix no other run of this bench uses."""
        return f"{label}{next(self._counter)}"

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def describe_run(name: str, result: RunResult) -> str:
    errors = sum(result.errors.values())
    return (
        f"{name}: {result.throughput:,.0f}/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms{f', {errors} errors' if errors else ''}"
    )


def cpu_per_request_us(child: Child, cpu_before: float, result: RunResult) -> float:
    """Server CPU per request over a whole run (warm-up included), in microseconds."""
    return (child.cpu_seconds() - cpu_before) / max(result.total, 1) * 1e6


def redis_unavailable() -> str | None:
    """Why the Redis figures cannot run, or None when they can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (`make setup` installs the Debian package)"
    try:
        store = open_store("redis://127.0.0.1:6379/0")
    except ValueError as exc:
        return f"the Redis session store is not available yet (open_store says: {exc})"
    with contextlib.suppress(Exception):
        asyncio.run(store.close())
    return None
