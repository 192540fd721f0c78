"""Start the real dialogue server as a child process, the way an operator would.

Tests that talk to the server over the network (grpcurl, the Node.js client, ...) use
`start_server` to get a serving process on a free 127.0.0.1 port and to have it stopped with
SIGTERM afterwards. The server announces readiness with one stdout line,
``dialogue-server listening on HOST:PORT``; nothing else about its output is relied on.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parents[2]

# Arguments for a throwaway server: a free port on loopback and an in-memory session store.
MEMORY_SERVER_ARGS: tuple[str, ...] = ("--listen", "127.0.0.1:0", "--store", "memory://")

# Generous bounds: a cold interpreter importing grpc on a slow, busy 2-core machine can take
# many seconds. These only bound how long a broken server can hang a test run.
STARTUP_TIMEOUT_S = 60.0
SHUTDOWN_TIMEOUT_S = 30.0
KILL_TIMEOUT_S = 10.0

# The server prints "dialogue-server listening on …", a gateway "dialogue-gateway VENDOR listening on …".
_LISTENING_LINE = re.compile(
    r"^dialogue-(?:server|gateway [\w-]+) listening on (?P<address>\S+:\d+)$"
)
_STDERR_TAIL_CHARS = 8000


class ServerProcessError(AssertionError):
    """The server did not start, crashed, or did not shut down cleanly."""


@dataclass
class RunningServer:
    """A serving dialogue-server child process."""

    address: str
    process: subprocess.Popen[bytes]
    stderr_path: Path
    _stdout_lines: list[str] = field(default_factory=list, repr=False)
    stopped: bool = False

    def stderr_text(self) -> str:
        """Everything the server wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stdout_lines(self) -> list[str]:
        """The stdout lines read so far, the listening line included."""
        return list(self._stdout_lines)

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> int:
        """Send SIGTERM and wait for the exit; kill it if it outlives `timeout`.

        Returns the exit code (negative for a signal, as in subprocess). A test that stops the
        server itself owns checking that code; the teardown of `start_server` then skips it.
        """
        self.stopped = True
        return _terminate(self.process, timeout)

    def describe_failure(self) -> str:
        """A report of the process for assertion messages: exit code and the stderr tail."""
        code = self.process.poll()
        state = "still running" if code is None else f"exit code {code}"
        tail = self.stderr_text()[-_STDERR_TAIL_CHARS:]
        return f"dialogue-server ({state}) at {self.address}; stderr tail:\n{tail}"


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=KILL_TIMEOUT_S)
            # A server that ignores SIGTERM is a failure even though it is gone now.
            raise ServerProcessError(
                f"dialogue-server did not exit within {timeout:.0f}s of SIGTERM; killed it"
            ) from None
    return process.returncode


def _pump_stdout(stream: IO[bytes], lines: list[str], sink: queue.Queue[str | None]) -> None:
    # Keeps draining stdout for the process's whole life: a full pipe would block the server.
    try:
        for raw in stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            lines.append(line)
            sink.put(line)
    except (OSError, ValueError):
        # The pipe was closed under us during teardown; nothing is left to read.
        pass
    finally:
        sink.put(None)


def _wait_for_address(
    process: subprocess.Popen[bytes],
    lines: queue.Queue[str | None],
    timeout: float,
) -> str:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ServerProcessError(
                f"dialogue-server printed no 'listening on' line within {timeout:.0f}s"
            )
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            code = process.wait(timeout=KILL_TIMEOUT_S)
            raise ServerProcessError(
                f"dialogue-server closed stdout (exit code {code}) before it was listening"
            )
        match = _LISTENING_LINE.match(line.strip())
        if match:
            return match.group("address")


@contextlib.contextmanager
def start_server(
    *args: str,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT_S,
    program: tuple[str, ...] = ("-m", "server"),
) -> Iterator[RunningServer]:
    """Run ``python -m server *args`` from the repository root until the block ends.

    `args` go to the server verbatim; pass ``--listen 127.0.0.1:0`` (see MEMORY_SERVER_ARGS) so
    parallel runs never fight over a port. `env` replaces the inherited environment when given.
    On leaving the block the server gets SIGTERM and must exit 0; a crash during the block or
    an unclean exit fails the test, with the server's stderr attached.
    """
    with tempfile.TemporaryDirectory(prefix="dialogue-server-") as tmp:
        stderr_path = Path(tmp) / "stderr.log"
        # Append mode: the child writes through its own descriptor while we read by path.
        with stderr_path.open("ab") as stderr_file:
            process = subprocess.Popen(
                [sys.executable, *program, *args],
                cwd=REPO_ROOT,
                env=dict(os.environ if env is None else env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
            )
        assert process.stdout is not None
        stdout_lines: list[str] = []
        pending: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(
            target=_pump_stdout,
            args=(process.stdout, stdout_lines, pending),
            name="dialogue-server-stdout",
            daemon=True,
        )
        reader.start()
        try:
            try:
                address = _wait_for_address(process, pending, startup_timeout)
            except ServerProcessError as exc:
                _terminate_quietly(process)
                exc.add_note(_stderr_note(stderr_path))
                raise
            server = RunningServer(
                address=address,
                process=process,
                stderr_path=stderr_path,
                _stdout_lines=stdout_lines,
            )
            try:
                yield server
            except Exception as exc:
                # The test failed already; stop the server but report the test's failure, with
                # whether the server was still up then and what it wrote to stderr.
                code_at_failure = process.poll()
                _terminate_quietly(process)
                state = (
                    "running" if code_at_failure is None else f"already exited {code_at_failure}"
                )
                exc.add_note(f"dialogue-server at {address} was {state} when the test failed")
                exc.add_note(_stderr_note(stderr_path))
                raise
            if not server.stopped:
                crashed = process.poll()
                if crashed is not None:
                    raise ServerProcessError(
                        f"dialogue-server exited on its own during the test (exit code "
                        f"{crashed})\n{server.describe_failure()}"
                    )
                try:
                    code = server.stop()
                except ServerProcessError as exc:
                    exc.add_note(_stderr_note(stderr_path))
                    raise
                if code != 0:
                    raise ServerProcessError(
                        f"dialogue-server exited {code} after SIGTERM, expected 0\n"
                        f"{server.describe_failure()}"
                    )
        finally:
            _terminate_quietly(process)
            reader.join(timeout=KILL_TIMEOUT_S)
            process.stdout.close()


def _terminate_quietly(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ServerProcessError, subprocess.TimeoutExpired):
        _terminate(process, SHUTDOWN_TIMEOUT_S)


def _stderr_note(stderr_path: Path) -> str:
    text = stderr_path.read_text(encoding="utf-8", errors="replace")
    return f"dialogue-server stderr tail:\n{text[-_STDERR_TAIL_CHARS:]}"


@contextlib.contextmanager
def start_gateway(
    vendor: str, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[RunningServer]:
    """Run ``python -m gateways VENDOR *args`` like `start_server` (same checks on exit)."""
    with start_server(*args, env=env, program=("-m", "gateways", vendor)) as gateway:
        yield gateway
