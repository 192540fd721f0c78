"""Transcript lookups against a real redis-server, a closed port and a Redis that never answers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from gateways.huawei_odfs.protocol import SpeechReference, Transcript
from gateways.huawei_odfs.transcripts import TranscriptStore
from tests.support.ports import closed_port_address
from tests.support.redis_server import RedisServer, start_redis

# Generous: only bounds how long a lookup may hang the test; loopback answers in microseconds.
_TIMEOUT_S = 5.0


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with start_redis(tmp_path) as server:
        yield server


@contextlib.asynccontextmanager
async def _store(url: str, timeout_s: float = _TIMEOUT_S) -> AsyncIterator[TranscriptStore]:
    store = TranscriptStore(url, timeout_s)
    try:
        yield store
    finally:
        await store.close()


def _reference(key: str, inter_no: str = "3") -> SpeechReference:
    return SpeechReference(key, inter_no, f"{key}@{inter_no}")


async def test_a_string_value_is_the_transcript(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("asr:call-1", "我要查话费".encode())
    async with _store(redis_server.url) as store:
        assert await store.lookup(_reference("asr:call-1")) == Transcript(text="我要查话费")


async def test_a_hash_is_read_by_recognition_number(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.hset("asr:call-2", mapping={"2": "流量", "3": "人工"})
    async with _store(redis_server.url) as store:
        assert await store.lookup(_reference("asr:call-2", "3")) == Transcript(text="人工")
        missing = await store.lookup(_reference("asr:call-2", "9"))
    assert missing == Transcript(problem="no transcript in Redis")


async def test_the_whole_reference_as_the_key(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("asr:call-3@3", "话费")
    async with _store(redis_server.url) as store:
        assert await store.lookup(_reference("asr:call-3")) == Transcript(text="话费")


async def test_a_gb18030_value_is_decoded(redis_server: RedisServer) -> None:
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("asr:call-4", "转人工".encode("gb18030"))
    async with _store(redis_server.url) as store:
        assert await store.lookup(_reference("asr:call-4")) == Transcript(text="转人工")


async def test_a_missing_key_is_no_transcript(redis_server: RedisServer) -> None:
    async with _store(redis_server.url) as store:
        found = await store.lookup(_reference("asr:nobody"))
    assert found == Transcript(problem="no transcript in Redis")


async def test_redis_down_is_no_transcript_not_an_error() -> None:
    async with _store(f"redis://{closed_port_address()}/0") as store:
        found = await store.lookup(_reference("asr:call-5"))
    assert found.text is None
    assert found.problem.startswith("Redis unavailable")


async def test_a_redis_that_never_answers_is_cut_off_by_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept, read, never answer
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with _store(f"redis://127.0.0.1:{port}/0", timeout_s=0.2) as store:
            found = await store.lookup(_reference("asr:call-6"))
    finally:
        server.close()
        await server.wait_closed()
    assert found.text is None
    assert found.problem.startswith("Redis unavailable")
