"""What the bench ran on: machine, kernel and versions, printed and written with the figures."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.procs import REPO_ROOT


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _command(*argv: str) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown"


def _commit() -> str:
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, check=False
        )

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return f"{head.stdout.strip()}{' + uncommitted changes' if dirty else ''}"


@dataclass(frozen=True, slots=True)
class CpuMark:
    """CPU time of the whole machine and of this process tree at one moment."""

    wall: float
    machine_busy: float
    mine: float

    @staticmethod
    def now() -> CpuMark:
        """Machine: every CPU's busy time (/proc/stat); mine: this process and its waited-for
        children (os.times), so a mark taken after the children exit counts them."""
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        ticks = os.sysconf("SC_CLK_TCK")
        times = os.times()
        return CpuMark(
            time.monotonic(),
            (user + nice + system + irq + softirq + steal) / ticks,
            times.user + times.system + times.children_user + times.children_system,
        )

    def others_since(self, earlier: CpuMark) -> float:
        """Average CPUs used by processes outside this bench between two marks."""
        wall = self.wall - earlier.wall
        others = (self.machine_busy - earlier.machine_busy) - (self.mine - earlier.mine)
        return max(0.0, others / wall) if wall > 0 else 0.0


def describe() -> dict[str, str]:
    """Machine and versions, as label → value."""
    return {
        "CPU": f"{_cpu_model()} — {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable)",
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "grpcio": _version("grpcio"),
        "protobuf": _version("protobuf"),
        "fastapi / uvicorn": f"{_version('fastapi')} / {_version('uvicorn')}",
        "h11 / httptools / uvloop": " / ".join(
            _version(name) for name in ("h11", "httptools", "uvloop")
        ),
        "PyYAML": f"{_version('PyYAML')} (libyaml: {_has_libyaml()})",
        "SQLite": sqlite3.sqlite_version,
        "redis-server": _command("redis-server", "--version"),
        "wrk": _command("wrk", "--version"),
        "commit": _commit(),
        "load average at start": Path("/proc/loadavg").read_text().split(" ")[0],
    }


def _has_libyaml() -> str:
    return "yes" if getattr(yaml, "__with_libyaml__", False) else "no"
