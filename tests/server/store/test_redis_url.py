"""Redis store URLs: one server, a Cluster, a Sentinel-watched master, and the WAIT options."""

from __future__ import annotations

import pytest

from server.store.redis_url import CLUSTER, SENTINEL, SINGLE, parse_redis_url


def test_a_single_server_keeps_redis_py_options_and_drops_ours() -> None:
    target = parse_redis_url(
        "REDIS://:s3cret@cache.example:6380/2?socket_timeout=2&wait_replicas=1&wait_timeout_ms=50"
    )
    assert target.topology == SINGLE
    assert target.url == "redis://:s3cret@cache.example:6380/2?socket_timeout=2"
    assert (target.wait_replicas, target.wait_timeout_ms) == (1, 50)
    assert target.where == "redis://cache.example:6380/2"


def test_a_cluster_is_any_of_its_nodes() -> None:
    target = parse_redis_url("redis+cluster://app:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert target.topology == CLUSTER
    assert target.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (target.username, target.password) == ("app", "pw")
    assert target.where == "redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002"


def test_a_sentinel_url_names_the_sentinels_and_the_master() -> None:
    target = parse_redis_url(
        "redis+sentinel://:pw@127.0.0.1:26379,127.0.0.1/my%20master/3?wait_replicas=2"
    )
    assert target.topology == SENTINEL
    assert target.nodes == (("127.0.0.1", 26379), ("127.0.0.1", 26379))
    assert (target.master, target.db, target.password, target.username) == (
        "my master",
        3,
        "pw",
        None,
    )
    assert target.wait_replicas == 2
    assert "pw" not in target.where


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memcached://x", "not a Redis URL"),
        ("redis://", "names no host"),
        ("redis+sentinel://127.0.0.1:26379", "names no master"),
        ("redis+sentinel://127.0.0.1:26379/", "names no master"),
        ("redis+cluster://127.0.0.1:7000/1", "only database 0"),
        ("redis+cluster://127.0.0.1:7000?wait_replicas=1", r"not supported with redis\+cluster"),
        ("redis+cluster://127.0.0.1:7000?socket_timeout=1", "unknown options"),
        ("redis+cluster://127.0.0.1:99999", "between 1 and 65535"),
        ("redis+cluster://127.0.0.1:x", "whole number"),
        ("redis+cluster://,127.0.0.1", "empty host"),
        ("redis://h?wait_replicas=-1", "at least 0"),
        ("redis://h?wait_timeout_ms=0", "at least 1"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_redis_url(url)
