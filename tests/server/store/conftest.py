"""One real redis-server for the store tests, started only when a test asks for it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from redis import Redis

from tests.support.redis_server import RedisServer, start_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server shared by the whole session; tests must not stop it (start their own)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: run `make setup`")
    with start_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL, its database emptied so every test starts from nothing."""
    with Redis.from_url(redis_server.url) as client:
        client.flushdb()
    return redis_server.url
