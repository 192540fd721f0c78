"""The Call Control client's HTTP client: the SDK's own httpx settings, one per-request cost less.

Before each request, httpcore's connection pool asks every idle keep-alive connection whether
its socket is readable (a server that closed it). On asyncio, httpcore's streams are anyio's,
and each such question rebuilds anyio's table of socket attributes to find the raw socket:
profiled under load, that was a fifth of the gateway's CPU per webhook, more than the check
itself. `_CachedSocketStream` keeps the raw socket the stream was opened with and asks the
same question of it directly; everything else (TLS, timeouts, errors) is the anyio stream's,
so the client behaves as the SDK's default one.
"""

from __future__ import annotations

import logging
import ssl
import typing
from typing import Any

import httpcore
import httpx
from httpcore._utils import is_socket_readable
from telnyx._constants import DEFAULT_CONNECTION_LIMITS

__all__ = ["call_control_http_client"]

_log = logging.getLogger("dialogue.gateway.telnyx.commands")


class _CachedSocketStream(httpcore.AsyncNetworkStream):
    """An httpcore stream whose "is_readable" check reads the socket it remembers."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket = stream.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _CachedSocketStream(
            await self._stream.start_tls(ssl_context, server_hostname, timeout)
        )

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return is_socket_readable(self._socket)
        return self._stream.get_extra_info(info)


class _CachedSocketBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, its streams wrapped in `_CachedSocketStream`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _CachedSocketStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(path, timeout, socket_options)
        return _CachedSocketStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


def call_control_http_client(timeout: float) -> httpx.AsyncClient:
    """An httpx client set up as the Telnyx SDK sets up its default one (connection limits,
    redirects followed, `timeout`), whose connection pool checks idle sockets cheaply.

    The pool is httpx's own; only its network backend is wrapped. Should a future httpx keep
    its pool elsewhere, the client is left as httpx made it (and this is logged once).
    """
    transport = httpx.AsyncHTTPTransport(limits=DEFAULT_CONNECTION_LIMITS)
    pool: Any = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.AsyncNetworkBackend):
        pool._network_backend = _CachedSocketBackend(backend)
    else:
        _log.info("httpx's connection pool has no network backend to wrap: using it as it is")
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        limits=DEFAULT_CONNECTION_LIMITS,
        follow_redirects=True,
    )
