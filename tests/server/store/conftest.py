"""One real redis-server for the store tests, started only when a test asks for it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from redis import Redis

from tests.support.redis_server import RedisServer, start_redis
from tests.support.redis_topologies import Cluster, start_cluster


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


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A 3-master Redis Cluster shared by the session; tests must not stop its nodes."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: run `make setup`")
    with start_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture
def redis_cluster_url(redis_cluster: Cluster) -> str:
    """The shared cluster's URL, every master emptied so every test starts from nothing."""
    for node in redis_cluster.nodes:
        with node.client() as client:
            client.flushall()
    return redis_cluster.url
