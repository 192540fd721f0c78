"""A gateway app served by uvicorn on a free 127.0.0.1 port, in-process, for HTTP-level tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Generator, Mapping

import httpx
import uvicorn
from starlette.types import ASGIApp

from gateways.app import create_vendor_app
from gateways.decider import Decider
from gateways.fallback import FallbackPolicy

# Only bounds how long a broken start-up can hang a test.
_STARTUP_BOUND_S = 30.0
TEST_FALLBACK = FallbackPolicy(skill_queue="9999")


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the test runner owns SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serve_app(app: ASGIApp, client_timeout_s: float = 30) -> AsyncIterator[httpx.AsyncClient]:
    """Serves an ASGI app with uvicorn on a free 127.0.0.1 port; yields a client for it."""
    server = QuietServer(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(_STARTUP_BOUND_S):
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        base_url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=client_timeout_s) as client:
            yield client
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def serve_gateway(
    vendor: str,
    server_address: str,
    env: Mapping[str, str] | None = None,
    deadline_s: float = 5.0,
    fallback: FallbackPolicy = TEST_FALLBACK,
) -> AsyncIterator[httpx.AsyncClient]:
    """Serves `vendor`'s gateway in front of server_address; yields a client for its base URL."""
    decider = Decider(server_address, deadline_s, fallback)
    app = create_vendor_app(vendor, decider, env or {})
    async with serve_app(app) as client:
        yield client
