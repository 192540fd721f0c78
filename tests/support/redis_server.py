"""A real redis-server (the Debian package, installed by `make setup`) on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port
from tests.support.redis_topologies import stop_process

# Only bounds how long a broken start-up can hang a test.
_STARTUP_BOUND_S = 30.0


@dataclass(frozen=True, slots=True)
class RedisServer:
    """A running redis-server child process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def start_redis(
    directory: Path, *, port: int | None = None, durable: bool = False
) -> Iterator[RedisServer]:
    """Runs redis-server on 127.0.0.1, working in directory, until the end.

    Args:
        directory: Where redis-server keeps its files.
        port: A fixed port (to restart "the same" Redis); a free one when None.
        durable: Keep data across a restart in directory (append-only file, fsync always);
            otherwise nothing is persisted.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(
            "redis-server is not installed: run `make setup` (it installs the Debian package)"
        )
    port = free_port() if port is None else port
    persistence = ("yes", "--appendfsync", "always") if durable else ("no",)
    process = subprocess.Popen(
        [
            *(binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)),
            *("--save", "", "--appendonly", *persistence),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + _STARTUP_BOUND_S
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=1) as conn,
            ):
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield RedisServer(port, process)
    finally:
        stop_process(process)
