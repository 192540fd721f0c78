"""`dialogue-gateway VENDOR`: one vendor's REST shim in front of the dialogue server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Generator, Sequence

import uvicorn

from gateways import vendors
from gateways.app import create_app
from gateways.config import GatewayConfig, parse_config
from gateways.decider import Decider
from gateways.masking import PhoneMaskingFilter

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
    decider = Decider(config.server, config.deadline_ms / 1000, config.fallback)
    try:
        router = vendors.load(config.vendor).build_router(decider, os.environ)
    except ValueError as exc:
        _log.error("refusing to start: %s", exc)
        await decider.close()
        return 2
    app = create_app(config.vendor, decider, router)
    host, _, port = config.listen.rpartition(":")
    server = _GatewayServer(
        uvicorn.Config(
            app,
            host=host,
            port=int(port),
            log_level=config.log_level.lower(),
            access_log=False,
            log_config=None,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(_STARTUP_POLL_S)
    if task.done():
        _log.error("refusing to start: cannot serve on %s", config.listen)
        return 2
    bound = server.servers[0].sockets[0].getsockname()[1]
    _log.info(
        "server %s, deadline %d ms, fallback %s",
        config.server,
        config.deadline_ms,
        config.fallback.mode,
    )
    # Scripts and tests wait for this exact line (port 0 picks the port).
    print(f"dialogue-gateway {config.vendor} listening on {host}:{bound}", flush=True)
    await task
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    config = parse_config(vendors.default_listens(), argv)
    logging.basicConfig(
        level=config.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(PhoneMaskingFilter())
    sys.exit(asyncio.run(serve(config)))


if __name__ == "__main__":
    main()
