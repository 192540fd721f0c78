"""Prometheus `/metrics` on a port of its own (`--metrics-listen`), for the server and gateways."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, start_http_server

__all__ = ["split_host_port", "start_metrics_http"]

# Joining the serving thread after shutdown; it stops within one poll interval (0.5 s).
_JOIN_S = 5


def start_metrics_http(listen: str, registry: CollectorRegistry) -> tuple[Callable[[], None], int]:
    """Serves `GET /metrics` on listen ("host:port") from a thread; (stop, bound port).

    Raises:
        OSError: the address cannot be bound.
        ValueError: listen is not host:port.
    """
    host, port = split_host_port(listen)
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=_JOIN_S)

    return stop, int(server.server_address[1])


def split_host_port(listen: str) -> tuple[str, int]:
    """("host", port) of "host:port" or "[v6]:port"; an empty host is every address.

    Raises:
        ValueError: no port, or not a number in 0-65535.
    """
    host, separator, port = listen.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)
