"""`dialogue-server`: load flows, open the store, serve until SIGTERM or SIGINT, exit 0.

SIGHUP, or a change to the flows directory, reloads the flows without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from server.app import create_server
from server.config import Config, parse_config
from server.engine.catalog import load_catalog
from server.engine.loader import FlowError
from server.reloader import FlowReloader, fingerprint
from server.store import StoreUnavailableError, open_store

_log = logging.getLogger("dialogue.server")


async def serve(config: Config) -> int:
    """Runs the server until a stop signal; returns the process exit code."""
    # Taken before loading, so that a file changed while loading is reloaded at the first poll.
    loaded = fingerprint(config.flows)
    try:
        catalog = load_catalog(config.flows)
        store = open_store(config.store)
    except (FlowError, ValueError) as exc:
        _log.error("refusing to start: %s", exc)
        return 2
    try:
        await store.ping()
    except StoreUnavailableError as exc:
        _log.error("refusing to start: session store %s unusable: %s", config.store, exc)
        return 2
    try:
        running = await create_server(config.listen, catalog, store)
    except RuntimeError as exc:
        _log.error("refusing to start: %s", exc)
        await store.close()
        return 2
    host = config.listen.rsplit(":", 1)[0]
    flows = ", ".join(f"{f.id}@{f.version}" for f in catalog.flows.values())
    _log.info("flows: %s; store: %s", flows, config.store)
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
    print(f"dialogue-server listening on {host}:{running.port}", flush=True)
    await stop.wait()
    # No reload during shutdown: the calls still finishing keep the catalog they have.
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    _log.info("stopping: letting in-flight calls finish (up to %.0f s)", config.grace_seconds)
    await running.health.enter_graceful_shutdown()
    await running.server.stop(config.grace_seconds)
    await store.close()
    _log.info("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    config = parse_config(argv)
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    sys.exit(asyncio.run(serve(config)))


if __name__ == "__main__":
    main()
