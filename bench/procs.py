"""Child processes of the bench: servers, gateways, the echo servicer, and how to watch them.

Every child is started from the repository root with this interpreter, announces readiness
with one stdout line ending in `listening on HOST:PORT`, writes its stderr to a log file, and
is stopped with SIGTERM (SIGKILL after a bound) when its block ends.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[1]
STARTUP_BOUND_S = 120.0  # a 10 000-node flow takes a while to load on a slow machine
STOP_BOUND_S = 20.0
_LISTENING = re.compile(r"listening on (?P<address>\S+:\d+)\s*$")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


class ChildError(RuntimeError):
    """A child did not start, or died."""


@dataclass
class Child:
    """A running child process and the address it serves on."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    address: str = ""
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue, repr=False)
    _reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def family(self) -> list[int]:
        """This process and its descendants (worker processes, if it forks any)."""
        return [self.pid, *descendants(self.pid)]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process and its descendants so far."""
        return sum(cpu_seconds(pid) for pid in self.family())

    def rss_bytes(self) -> int:
        """Resident memory of the process and its descendants now."""
        return sum(rss_bytes(pid) for pid in self.family())

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        return ""

    def wait_listening(self, bound_s: float = STARTUP_BOUND_S) -> str:
        """Waits for the readiness line; returns (and remembers) the address."""
        deadline = time.monotonic() + bound_s
        while not self.address:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChildError(
                    f"{self.name} printed no 'listening on' line within {bound_s:.0f} s"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                code = self.process.wait(STOP_BOUND_S)
                raise ChildError(
                    f"{self.name} exited {code} before listening; log tail:\n{self.log_tail()}"
                )
            match = _LISTENING.search(line)
            if match:
                self.address = match.group("address")
        return self.address

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise ChildError(f"{self.name} died (exit {code}); log tail:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_BOUND_S; safe to call twice."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_BOUND_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_BOUND_S)
        if self._reader is not None:
            self._reader.join(STOP_BOUND_S)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _pump(stream: IO[bytes], sink: queue.Queue[str | None]) -> None:
    # Drains stdout for the child's whole life: a full pipe would block it.
    with contextlib.suppress(OSError, ValueError):
        for raw in stream:
            sink.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    sink.put(None)


def launch(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: dict[str, str] | None = None,
    *,
    cwd: Path = REPO_ROOT,
) -> Child:
    """Starts `python ARGV...` from cwd (the repository root, or an exported revision of it:
    `python -m` imports the packages of its working directory first); does not wait for it to
    listen."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    assert process.stdout is not None
    child = Child(name, process, log_path)
    child._reader = threading.Thread(
        target=_pump, args=(process.stdout, child._lines), name=f"{name}-stdout", daemon=True
    )
    child._reader.start()
    return child


@contextlib.contextmanager
def running(*children: Child) -> Iterator[tuple[Child, ...]]:
    """Waits until every child listens; stops all of them when the block ends."""
    try:
        for child in children:
            child.wait_listening()
        yield children
    finally:
        for child in children:
            child.stop()


def server_argv(store: str, *, flows: Path | None = None, listen: str = "127.0.0.1:0") -> list[str]:
    argv = ["-m", "server", "--listen", listen, "--store", store]
    if flows is not None:
        argv += ["--flows", str(flows)]
    return argv


def echo_argv(listen: str = "127.0.0.1:0", *, sync: bool = False) -> list[str]:
    return ["-m", "bench.echo", "--listen", listen, *(["--sync"] if sync else [])]


def gateway_argv(vendor: str, server: str, listen: str = "127.0.0.1:0") -> list[str]:
    return ["-m", "gateways", vendor, "--listen", listen, "--server", server]


def bare_argv(server: str, listen: str = "127.0.0.1:0") -> list[str]:
    return ["-m", "bench.bare", "--listen", listen, "--server", server]


# -- /proc ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


def descendants(pid: int) -> list[int]:
    """Every live descendant of pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


class PeakSampler:
    """Samples the resident memory of some children every interval, on a thread, keeping peaks."""

    def __init__(self, children: Sequence[Child], interval_s: float = 0.05) -> None:
        self._children = list(children)
        self._interval_s = interval_s
        self._stop = threading.Event()
        self.peaks: dict[str, int] = {child.name: child.rss_bytes() for child in children}
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            for child in self._children:
                self.peaks[child.name] = max(self.peaks[child.name], child.rss_bytes())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
