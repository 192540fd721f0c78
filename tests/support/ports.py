"""Loopback ports for tests: one nobody listens on right now."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A 127.0.0.1 port that was free a moment ago (the kernel picked it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def closed_port_address() -> str:
    """A 127.0.0.1 address nothing listens on: a dead server, for fallback tests."""
    return f"127.0.0.1:{free_port()}"
