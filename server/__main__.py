"""`dialogue-server`: load flows, open the store, serve until SIGTERM or SIGINT, exit 0.

SIGHUP, or a change to the flows directory, reloads the flows without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

from common import eventloop
from server.app import create_server
from server.config import Config, parse_config, redacted
from server.engine.catalog import load_catalog
from server.engine.loader import FlowError
from server.observability import ServerMetrics
from server.reloader import FlowReloader, fingerprint
from server.security import ServerSecurity, load_server_credentials
from server.store import StoreUnavailableError, open_store
from telemetry.logs import configure_logging
from telemetry.metrics_http import split_host_port, start_metrics_http
from telemetry.tracing import tracer_provider_from_env

_log = logging.getLogger("dialogue.server")


async def serve(config: Config) -> int:
    """Runs the server until a stop signal; returns the process exit code."""
    # Settings that cannot work are refused before anything is opened or bound.
    try:
        security = ServerSecurity(
            load_server_credentials(config.tls_cert, config.tls_key, config.tls_client_ca),
            config.auth_tokens,
        )
        provider = tracer_provider_from_env(os.environ, "dialogue-server")
    except ValueError as exc:  # ConfigurationError included
        _log.error("refusing to start: %s", exc)
        return 2
    # Taken before loading, so that a file changed while loading is reloaded at the first poll.
    loaded = fingerprint(config.flows)
    try:
        catalog = load_catalog(config.flows)
        store = open_store(
            config.store, idle_ttl_s=config.store_idle_ttl_s, ended_ttl_s=config.store_ended_ttl_s
        )
    except (FlowError, ValueError) as exc:
        _log.error("refusing to start: %s", exc)
        return 2
    try:
        await store.ping()
    except StoreUnavailableError as exc:
        _log.error("refusing to start: session store %s unusable: %s", redacted(config.store), exc)
        return 2
    metrics = ServerMetrics()
    stop_metrics: Callable[[], None] | None = None
    if config.metrics_listen:
        try:
            stop_metrics, metrics_port = start_metrics_http(config.metrics_listen, metrics.registry)
        except (OSError, ValueError) as exc:
            _log.error(
                "refusing to start: cannot serve metrics on %s: %s", config.metrics_listen, exc
            )
            await store.close()
            return 2
        metrics_host = split_host_port(config.metrics_listen)[0]
        _log.info("metrics on http://%s:%d/metrics", metrics_host, metrics_port)
    tracer = provider.get_tracer("dialogue.server") if provider is not None else None
    try:
        running = await create_server(
            config.listen, catalog, store, security=security, metrics=metrics, tracer=tracer
        )
    except RuntimeError as exc:
        _log.error("refusing to start: %s", exc)
        await store.close()
        if stop_metrics is not None:
            stop_metrics()
        return 2
    _log_security(config)
    if provider is not None:
        _log.info("tracing on: spans exported per OTEL_TRACES_EXPORTER (default otlp)")
    host = config.listen.rsplit(":", 1)[0]
    flows = ", ".join(f"{f.id}@{f.version}" for f in catalog.flows.values())
    _log.info("flows: %s; store: %s", flows, redacted(config.store))
    reloader = FlowReloader(config.flows, running.service, keep=config.keep_versions, loaded=loaded)
    _log.info(
        "flows reload on SIGHUP%s; %d versions kept per flow for calls in progress",
        f" and on change (checked every {config.reload_interval:g} s)"
        if config.reload_interval
        else "",
        config.keep_versions,
    )
    watcher = asyncio.create_task(reloader.watch(config.reload_interval), name="flow-reloader")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloader.request_reload)
    # Tests and scripts wait for this exact line (port 0 picks the port); signals are
    # handled from here on, so whoever reads it may stop the server at once.
    # One write, so that `--workers` announcing at once cannot interleave their lines (print
    # writes the text and the newline separately when Python runs unbuffered).
    sys.stdout.write(f"dialogue-server listening on {host}:{running.port}\n")
    sys.stdout.flush()
    await stop.wait()
    # No reload during shutdown: the calls still finishing keep the catalog they have.
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    _log.info("stopping: letting in-flight calls finish (up to %.0f s)", config.grace_seconds)
    await running.health.enter_graceful_shutdown()
    await running.server.stop(config.grace_seconds)
    await running.service.aclose()
    await store.close()
    if stop_metrics is not None:
        stop_metrics()
    if provider is not None:
        # Flushes spans still batched; bounded by the exporter's own timeout.
        provider.shutdown()
    _log.info("stopped")
    return 0


def _log_security(config: Config) -> None:
    """Says how the port is protected; never the tokens themselves."""
    if config.tls_cert is None:
        _log.info("TLS off: the gRPC port serves plaintext")
    else:
        _log.info(
            "TLS on%s",
            " with client certificates required (mutual TLS)" if config.tls_client_ca else "",
        )
    if config.auth_tokens:
        _log.info(
            "bearer token required on every RPC but health (%d accepted)", len(config.auth_tokens)
        )
        if config.tls_cert is None:
            _log.warning("bearer tokens travel in clear text: set --tls-cert and --tls-key")


async def _prepare_store(config: Config) -> bool:
    """Opens the store once before the workers start: creating an SQLite file and its schema is
    then done by one process, not raced by all of them (which could fail with "locked")."""
    try:
        store = open_store(config.store)
    except ValueError as exc:
        _log.error("refusing to start: %s", exc)
        return False
    try:
        await store.ping()
    except StoreUnavailableError as exc:
        _log.error("refusing to start: session store %s unusable: %s", redacted(config.store), exc)
        return False
    finally:
        await store.close()
    return True


def supervise(config: Config, argv: Sequence[str]) -> int:
    """Runs `config.workers` server processes on one port and relays signals to them.

    Each worker is a whole server (its own event loop, channel and store connection) binding the
    same port with SO_REUSEPORT, so the kernel spreads connections over the cores. They share
    call state through the store, exactly as replicas on several machines do.
    """
    if config.listen.rsplit(":", 1)[-1] == "0":
        _log.error(
            "refusing to start: --workers needs a fixed port (port 0 would differ per worker)"
        )
        return 2
    if config.store.startswith("memory:"):
        _log.error(
            "refusing to start: --workers needs a store the workers share (sqlite:// or redis://)"
        )
        return 2
    try:
        # Checked here too, so that bad settings exit 2 once rather than once per worker.
        load_server_credentials(config.tls_cert, config.tls_key, config.tls_client_ca)
        provider = tracer_provider_from_env(os.environ, "dialogue-server")
    except ValueError as exc:
        _log.error("refusing to start: %s", exc)
        return 2
    if provider is not None:
        provider.shutdown()
    if not asyncio.run(_prepare_store(config)):
        return 2
    command = [sys.executable, "-m", "server", *argv, "--workers", "1"]
    commands = [list(command) for _ in range(config.workers)]
    if config.metrics_listen:
        # One metrics port per worker (each counts only its own RPCs): port, port+1, …
        host, port = split_host_port(config.metrics_listen)
        for index, worker_command in enumerate(commands):
            worker_port = port + index if port else 0
            worker_command += ["--metrics-listen", f"{host}:{worker_port}"]
    workers = [subprocess.Popen(worker_command) for worker_command in commands]

    def relay(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, relay)
    codes = [worker.wait() for worker in workers]
    return 0 if all(code == 0 for code in codes) else 1


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    config = parse_config(arguments)
    configure_logging(config.log_level, config.log_format)
    if config.workers > 1:
        sys.exit(supervise(config, arguments))
    sys.exit(eventloop.run(serve(config), config.event_loop))


if __name__ == "__main__":
    main()
