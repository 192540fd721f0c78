"""A real server and all four gateways on an event loop of their own, for synchronous tests.

Hypothesis drives synchronous test functions; the stack they talk to (the in-process gRPC
server, the four uvicorn gateways, the fake Telnyx API) runs on an asyncio loop in a background
thread, so it keeps serving between examples. Tests reach it like any client would: over HTTP
on 127.0.0.1 and over a gRPC channel; `run` executes a coroutine on the stack's loop for what
only the server process itself knows (the store's digest).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from server.store import SessionStore
from tests.gateways.telnyx.fake_api import FakeTelnyx, serve_fake
from tests.gateways.telnyx.harness import gateway_env
from tests.support.gateway import serve_gateway
from tests.support.grpc_server import serve

T = TypeVar("T")

VENDORS = ("aliyun-ivr", "aliyun-ccc", "huawei-odfs", "telnyx")
HUAWEI_TOKEN = "token-1"
# Only bound how long a broken stack can hang a test; nothing is timed against them.
_CALL_BOUND_S = 60.0
_SETTLE_BOUND_S = 10.0


def vendor_env(vendor: str, fake: FakeTelnyx, key: Ed25519PrivateKey) -> dict[str, str]:
    """What each gateway is configured with in the hardening tests."""
    if vendor == "aliyun-ivr":
        return {"ALIYUN_TRANSFER_NUMBERS": "9999=+8610086"}
    if vendor == "huawei-odfs":
        # Token checking on, so the fuzz also reaches the token code with odd tokens.
        return {"HUAWEI_ODFS_AUTH_TOKENS": HUAWEI_TOKEN}
    if vendor == "telnyx":
        return gateway_env(fake, key)
    return {}


@dataclass
class Stack:
    """The running stack: where everything listens, and a handle on its loop."""

    loop: asyncio.AbstractEventLoop
    server_address: str
    store: SessionStore
    urls: dict[str, str]
    fake: FakeTelnyx
    key: Ed25519PrivateKey
    counts: dict[str, int] = field(default_factory=dict)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine on the stack's loop and returns its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(_CALL_BOUND_S)

    def digest(self) -> dict[str, int]:
        """Every call the store holds, with its state version: any write changes it."""

        async def read() -> dict[str, int]:
            versions: dict[str, int] = {}
            async for call_id in self.store.call_ids():
                versions[call_id] = (await self.store.read(call_id, "")).version
            return versions

        return self.run(read())

    def settled_digest(self) -> dict[str, int]:
        """The digest once nothing is being written any more (two equal reads in a row).

        Used after an answer that may leave work running (a report batch past its budget):
        a decision cancelled on the gateway side may still land on the server.
        """
        deadline = time.monotonic() + _SETTLE_BOUND_S
        last = self.digest()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.digest()
            if now == last:
                return now
            last = now
        return last


@contextlib.contextmanager
def running_stack(store_url: str = "memory://") -> Iterator[Stack]:
    """Starts the server and the four gateways on a background loop; stops them afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="hardening-stack", daemon=True)
    thread.start()
    exits = contextlib.AsyncExitStack()
    key = Ed25519PrivateKey.generate()

    async def start() -> Stack:
        served = await exits.enter_async_context(serve(store_url))
        fake = await exits.enter_async_context(serve_fake())
        address = f"127.0.0.1:{served.running.port}"
        urls: dict[str, str] = {}
        for vendor in VENDORS:
            client = await exits.enter_async_context(
                serve_gateway(vendor, address, vendor_env(vendor, fake, key))
            )
            urls[vendor] = str(client.base_url).rstrip("/")
        return Stack(loop, address, served.store, urls, fake, key)

    try:
        started: Future[Stack] = asyncio.run_coroutine_threadsafe(start(), loop)
        stack = started.result(_CALL_BOUND_S)
        yield stack
    finally:
        closing = asyncio.run_coroutine_threadsafe(exits.aclose(), loop)
        try:
            closing.result(_CALL_BOUND_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_CALL_BOUND_S)
            loop.close()
