"""The Call Control client's httpx client: the SDK's settings, idle sockets checked cheaply."""

from __future__ import annotations

import asyncio

import httpcore

from gateways.telnyx.transport import _CachedSocketBackend, call_control_http_client

_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def test_the_client_keeps_the_sdks_settings_and_wraps_the_pools_backend() -> None:
    client = call_control_http_client(2.5)
    try:
        assert client.timeout.read == 2.5
        assert client.follow_redirects
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool._network_backend, _CachedSocketBackend)
    finally:
        await client.aclose()


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    connections = 0
    close_now = asyncio.Event()
    ended = asyncio.Semaphore(0)  # released by each connection the server closed

    async def answer_then_close_when_told(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_ANSWER)
        await writer.drain()
        await close_now.wait()  # keep-alive was offered; later the server changes its mind
        writer.close()
        await writer.wait_closed()
        ended.release()

    server = await asyncio.start_server(answer_then_close_when_told, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = call_control_http_client(5.0)
    try:
        async with server:
            first = await client.get(f"http://127.0.0.1:{port}/a")
            pool = client._transport._pool  # type: ignore[attr-defined]
            [idle] = pool.connections
            assert not idle.has_expired()
            close_now.set()
            await ended.acquire()
            # The closed socket is readable (EOF): the pool sees it and dials again.
            for _ in range(200):
                if idle.has_expired():
                    break
                await asyncio.sleep(0.01)
            assert idle.has_expired()
            close_now.clear()
            second = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/b"))
            while connections < 2:
                await asyncio.sleep(0.01)
            close_now.set()
            answered = await second
            await ended.acquire()
    finally:
        await client.aclose()
    assert (first.status_code, answered.status_code) == (200, 200)
    assert connections == 2


async def test_the_wrapped_stream_answers_what_the_backend_stream_answers() -> None:
    finished = asyncio.Event()

    async def hold_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        await writer.wait_closed()
        finished.set()

    server = await asyncio.start_server(hold_until_closed, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    backend = _CachedSocketBackend(httpcore.AnyIOBackend())
    async with server:
        stream = await backend.connect_tcp("127.0.0.1", port, timeout=5)
        try:
            assert stream.get_extra_info("server_addr") == ("127.0.0.1", port)
            assert stream.get_extra_info("is_readable") is False
        finally:
            await stream.aclose()
        # The server's side of the connection ends before its event loop does.
        await finished.wait()
