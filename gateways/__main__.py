"""`dialogue-gateway VENDOR`: one vendor's REST shim in front of the dialogue server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING

import uvicorn

from common import eventloop
from gateways import vendors
from gateways.app import create_vendor_app
from gateways.config import GatewayConfig, parse_config
from gateways.decider import Decider
from gateways.observability import GatewayMetrics
from gateways.security import load_channel_security
from telemetry.logs import configure_logging
from telemetry.metrics_http import start_metrics_http
from telemetry.tracing import tracer_provider_from_env

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_log = logging.getLogger("dialogue.gateway")
_STARTUP_POLL_S = 0.05


class _GatewayServer(uvicorn.Server):
    """uvicorn, stopping gracefully on SIGTERM/SIGINT and then exiting 0.

    uvicorn's own handlers re-raise the signal after shutdown, so the process would die by it;
    an orderly stop is a success for supervisors and for `make run`.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.handle_exit, signum, None)
        try:
            yield
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


async def serve(config: GatewayConfig) -> int:
    """Serves until SIGTERM/SIGINT (uvicorn handles both gracefully); returns the exit code."""
    # Settings that cannot work are refused before anything is bound.
    try:
        security = load_channel_security(
            server_ca=config.server_ca,
            client_cert=config.client_cert,
            client_key=config.client_key,
            server_tls=config.server_tls,
            token=config.auth_token,
        )
        provider = tracer_provider_from_env(os.environ, f"dialogue-gateway-{config.vendor}")
    except ValueError as exc:  # ConfigurationError included
        _log.error("refusing to start: %s", exc)
        return 2
    metrics = GatewayMetrics()
    tracer = provider.get_tracer("dialogue.gateway") if provider is not None else None
    decider = Decider(
        config.server,
        config.deadline_ms / 1000,
        config.fallback,
        security=security,
        metrics=metrics,
        tracer=tracer,
    )
    try:
        app = create_vendor_app(
            config.vendor,
            decider,
            os.environ,
            max_body_bytes=config.max_body_bytes,
            max_header_bytes=config.max_header_bytes,
            metrics_route=not config.metrics_listen,
        )
    except ValueError as exc:
        _log.error("refusing to start: %s", exc)
        await decider.close()
        return 2
    stop_metrics: Callable[[], None] | None = None
    if config.metrics_listen:
        try:
            stop_metrics, metrics_port = start_metrics_http(config.metrics_listen, metrics.registry)
        except (OSError, ValueError) as exc:
            _log.error(
                "refusing to start: cannot serve metrics on %s: %s", config.metrics_listen, exc
            )
            await decider.close()
            return 2
        _log.info("metrics on port %d at /metrics", metrics_port)
    host, _, port = config.listen.rpartition(":")
    server = _GatewayServer(
        uvicorn.Config(
            app,
            host=host,
            port=int(port),
            log_level=config.log_level.lower(),
            access_log=False,
            log_config=None,
            # h11 explicitly, whichever parsers are installed: its buffer limit bounds the memory
            # headers trickling in can take (httptools has none); SizeLimits checks the rest.
            http="h11",
            h11_max_incomplete_event_size=config.max_header_bytes,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(_STARTUP_POLL_S)
    if task.done():
        _log.error("refusing to start: cannot serve on %s", config.listen)
        _stop_telemetry(stop_metrics, provider)
        return 2
    bound = server.servers[0].sockets[0].getsockname()[1]
    _log.info(
        "server %s%s, deadline %d ms, fallback %s",
        config.server,
        _protection(security.tls, bool(security.certificate_chain), bool(security.token)),
        config.deadline_ms,
        config.fallback.mode,
    )
    if security.token and not security.tls:
        _log.warning("the bearer token travels in clear text: set --server-ca or --server-tls")
    if provider is not None:
        _log.info("tracing on: spans exported per OTEL_TRACES_EXPORTER (default otlp)")
    # Scripts and tests wait for this exact line (port 0 picks the port).
    print(f"dialogue-gateway {config.vendor} listening on {host}:{bound}", flush=True)
    await task
    _stop_telemetry(stop_metrics, provider)
    return 0


def _protection(tls: bool, client_cert: bool, token: bool) -> str:
    """How the server is reached, for the start-up line; never the token itself."""
    said = ["mutual TLS" if client_cert else "TLS"] if tls else ["plaintext"]
    if token:
        said.append("bearer token")
    return f" ({', '.join(said)})"


def _stop_telemetry(
    stop_metrics: Callable[[], None] | None, provider: TracerProvider | None
) -> None:
    if stop_metrics is not None:
        stop_metrics()
    if provider is not None:
        # Flushes spans still batched; bounded by the exporter's own timeout.
        provider.shutdown()


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    config = parse_config(vendors.default_listens(), argv)
    # Both formats mask phone numbers in messages and fields (telemetry.masking).
    configure_logging(config.log_level, config.log_format)
    sys.exit(eventloop.run(serve(config), config.event_loop))


if __name__ == "__main__":
    main()
