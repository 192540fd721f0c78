"""The orchestrator's side of the load generator: one child process, one run at a time."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import IO

from bench.loadgen import RunSpec
from bench.procs import REPO_ROOT, STOP_BOUND_S, ChildError
from bench.results import RunResult

_SLACK_S = 60.0  # start-up, connecting, stragglers: only bounds a hung load generator


class LoadGenerator:
    """`python -m bench.loadgen` as a child; `run` sends it a spec and waits for the result."""

    def __init__(self, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = log_dir / "loadgen.log"
        with self._log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "bench.loadgen"],
                cwd=REPO_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self._process.stdout is not None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(
            target=self._pump, args=(self._process.stdout,), name="loadgen-stdout", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def _pump(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self._lines.put(raw.decode("utf-8", errors="replace"))
        self._lines.put(None)

    def run(self, spec: RunSpec) -> RunResult:
        """Runs one spec in the child; raises ChildError if it fails or hangs."""
        assert self._process.stdin is not None
        self._process.stdin.write((json.dumps(asdict(spec)) + "\n").encode())
        self._process.stdin.flush()
        bound = spec.warmup_s + spec.duration_s + spec.timeout_s + _SLACK_S
        try:
            line = self._lines.get(timeout=bound)
        except queue.Empty:
            raise ChildError(f"the load generator gave no result within {bound:.0f} s") from None
        if line is None:
            tail = self._log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
            raise ChildError(f"the load generator died; log tail:\n{tail}")
        return RunResult(**json.loads(line))

    def close(self) -> None:
        if self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()
        try:
            self._process.wait(STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(STOP_BOUND_S)
        self._reader.join(STOP_BOUND_S)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
