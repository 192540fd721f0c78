"""Redis-only behaviour of RedisStore: key layout, expiry, replicas, failures and recovery,
WAIT, a real Cluster and a real Sentinel failover.

The behaviour every store shares is tested against Redis by test_stores.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisError, ResponseError

from server.store import RedisStore, Snapshot, StoreUnavailableError, TurnRecord
from server.store.records import encode_turn
from tests.server.store.test_stores import append, turn
from tests.support.ports import free_port
from tests.support.redis_server import RedisServer, start_redis
from tests.support.redis_topologies import replica_of, start_sentinel

IDLE_TTL_S = 1000
ENDED_TTL_S = 100


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_url, idle_ttl_s=IDLE_TTL_S, ended_ttl_s=ENDED_TTL_S)
    yield store
    await store.close()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client on the store's database, to look behind the store's back."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def keys_of(call_id: str) -> tuple[str, str, str]:
    """The documented keys (state, turns, order) of a call whose id needs no escaping."""
    return (
        f"dialogue:{{{call_id}}}:state",
        f"dialogue:{{{call_id}}}:turns",
        f"dialogue:{{{call_id}}}:order",
    )


def hash_tag(key: bytes) -> bytes | None:
    """The part of key Redis Cluster hashes when the key has a hash tag, else None."""
    start = key.find(b"{")
    end = key.find(b"}", start + 1)
    if start < 0 or end < 0 or end == start + 1:
        return None
    return key[start + 1 : end]


# --- key layout ----------------------------------------------------------------------------


async def test_a_call_is_two_keys_under_one_hash_tag(store: RedisStore, client: Redis) -> None:
    await append(store, "call-1", 2)

    state, turns, _ = keys_of("call-1")
    assert sorted(await client.keys("*")) == sorted(k.encode() for k in (state, turns))
    # Version, then the highest turn number written, then the state bytes.
    assert await client.get(state) == b"2:2:state 2"
    assert await client.type(turns) == b"hash"
    assert sorted(await client.hkeys(turns)) == [b"req-1", b"req-2"]


async def test_a_call_takes_the_order_key_at_its_first_trim(redis_url: str, client: Redis) -> None:
    store = RedisStore(redis_url, max_turns=3)
    try:
        # Out of order, so that the order built from the records' numbers is seen to be theirs.
        for version, number in enumerate([2, 1, 3]):
            assert await store.write("call-1", version, b"s", turn(number))
        _, turns, order = keys_of("call-1")
        assert not await client.exists(order)

        assert await store.write("call-1", 3, b"s", turn(4))

        assert await client.zrange(order, 0, -1, withscores=True) == [
            (b"req-2", 2.0),
            (b"req-3", 3.0),
            (b"req-4", 4.0),
        ]
        assert sorted(await client.hkeys(turns)) == [b"req-2", b"req-3", b"req-4"]
        # From now on the order key answers for the turn numbers kept.
        with pytest.raises(ValueError, match="turn 3"):
            await store.write("call-1", 4, b"s", turn(3, request_id="req-new"))
        assert await store.write("call-1", 4, b"s", turn(6))
        assert await store.turns("call-1") == [turn(3), turn(4), turn(6)]
        assert await client.zcard(order) == 3
    finally:
        await store.close()


ODD_CALL_IDS = [
    "0a1b^2c3d^4e5f",  # Aliyun
    "{braces}",
    "a{b}c",
    "}x{",
    "{}",
    "{",
    "}",
    "",
    "%",
    "%7B",  # what `{` escapes to: must not meet the call "{"
    "dialogue:{x}:state",
    "呼叫 1",
]


async def test_odd_call_ids_keep_one_slot_per_call_and_stay_apart(
    store: RedisStore, client: Redis
) -> None:
    for number, call_id in enumerate(ODD_CALL_IDS, start=1):
        assert await store.write(call_id, 0, f"state {number}".encode(), turn(1))

    listed = await client.keys("*")
    keys = [key for key in listed if isinstance(key, bytes)]  # narrows the type for mypy
    assert len(keys) == len(listed)
    by_tag: dict[bytes, list[bytes]] = {}
    for key in keys:
        tag = hash_tag(key)
        # An empty or missing tag would hash the whole key, scattering the call over slots.
        assert tag, key
        by_tag.setdefault(tag, []).append(key)
    assert len(by_tag) == len(ODD_CALL_IDS)
    for tag, tagged in by_tag.items():
        assert len(tagged) == 2, tagged
        assert {key_slot(key) for key in tagged} == {key_slot(tag)}
    for number, call_id in enumerate(ODD_CALL_IDS, start=1):
        assert await store.read(call_id, "req-1") == Snapshot(
            state=f"state {number}".encode(), version=1, replay=turn(1)
        )
        assert await store.turns(call_id) == [turn(1)]


async def test_resp3_connections_read_the_same(redis_url: str) -> None:
    # `?protocol=3` in the URL, or a future redis-py default, converts script replies differently.
    store = RedisStore(f"{redis_url}?protocol=3")
    try:
        assert await store.read("call-1", "req-1") == Snapshot(state=None, version=0, replay=None)
        await append(store, "call-1", 2)
        assert await store.read("call-1", "req-9") == Snapshot(
            state=b"state 2", version=2, replay=None
        )
        assert (await store.read("call-1", "req-1")).replay == turn(1)
        assert await store.turns("call-1") == [turn(1), turn(2)]
        assert not await store.write("call-1", 1, b"stale", turn(3))
    finally:
        await store.close()


# --- calls written by earlier versions (a rolling upgrade) ---------------------------------


async def write_earlier_layout(client: Redis, call_id: str, count: int) -> None:
    """A call of `count` turns as versions before the string state wrote it: the state a hash
    {v, s}, the order a sorted set from the first turn."""
    state, turns, order = keys_of(call_id)
    await client.hset(state, mapping={"v": count, "s": f"state {count}"})
    for number in range(1, count + 1):
        await client.hset(turns, f"req-{number}", encode_turn(turn(number)))
        await client.zadd(order, {f"req-{number}": number})
    for key in (state, turns, order):
        await client.expire(key, IDLE_TTL_S)


async def test_a_call_in_the_earlier_layout_is_served_in_it(
    store: RedisStore, client: Redis
) -> None:
    await write_earlier_layout(client, "call-1", 2)

    assert await store.read("call-1", "req-2") == Snapshot(
        state=b"state 2", version=2, replay=turn(2)
    )
    assert await store.turns("call-1") == [turn(1), turn(2)]
    assert not await store.write("call-1", 1, b"stale", turn(3))
    assert not await store.write("call-1", 2, b"again", turn(3, request_id="req-1"))
    with pytest.raises(ValueError, match="turn 2"):
        await store.write("call-1", 2, b"bad", turn(2, request_id="req-new"))

    assert await store.write("call-1", 2, b"state 3", turn(3), ended=True)

    state, turns, order = keys_of("call-1")
    # Left in its layout, so that a replica of the earlier version can still serve it.
    assert await client.hgetall(state) == {b"v": b"3", b"s": b"state 3"}
    assert await client.zrange(order, 0, -1) == [b"req-1", b"req-2", b"req-3"]
    assert await store.read("call-1", "req-3") == Snapshot(
        state=b"state 3", version=3, replay=turn(3)
    )
    assert await store.turns("call-1") == [turn(1), turn(2), turn(3)]
    for key in (state, turns, order):
        assert 0 < await client.ttl(key) <= ENDED_TTL_S, key


async def test_a_call_in_the_earlier_layout_is_trimmed_by_its_order(
    redis_url: str, client: Redis
) -> None:
    await write_earlier_layout(client, "call-1", 3)
    store = RedisStore(redis_url, max_turns=2)
    try:
        assert await store.write("call-1", 3, b"state 4", turn(4))

        _, turns, order = keys_of("call-1")
        assert sorted(await client.hkeys(turns)) == [b"req-3", b"req-4"]
        assert await client.zrange(order, 0, -1) == [b"req-3", b"req-4"]
        assert await store.turns("call-1") == [turn(3), turn(4)]
    finally:
        await store.close()


async def test_an_earlier_version_fails_loudly_on_a_call_in_the_new_layout(
    store: RedisStore, client: Redis
) -> None:
    await append(store, "call-1", 1)

    # The first command of the earlier read and write scripts: WRONGTYPE, nothing written.
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await client.hmget(keys_of("call-1")[0], "v", "s")


# --- encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "record",
    [
        TurnRecord(1, "", b"", b""),
        TurnRecord(2**40, "请求-1 ^{}", b"\x00" * 3, bytes(range(256))),
        TurnRecord(3, "r", b"x" * 70_000, b"\xff" * 70_000),
    ],
)
async def test_turns_round_trip_byte_for_byte(store: RedisStore, record: TurnRecord) -> None:
    assert await store.write("call-1", 0, bytes(range(256)), record)

    snapshot = await store.read("call-1", record.request_id)
    assert snapshot == Snapshot(state=bytes(range(256)), version=1, replay=record)
    assert await store.turns("call-1") == [record]


async def test_a_turn_written_with_its_digest_by_earlier_versions_is_still_read(
    store: RedisStore, client: Redis
) -> None:
    # Format 1: format, number, lengths of request id, digest and request; then the fields.
    header = struct.pack(">BqIII", 1, 1, len("req-1"), len("digest"), len("request"))
    state, turns, order = keys_of("call-1")
    await client.hset(state, mapping={"v": "1", "s": "state"})
    await client.hset(turns, "req-1", header + b"req-1digestrequestresponse")
    await client.zadd(order, {"req-1": 1})

    expected = TurnRecord(1, "req-1", b"request", b"response")
    assert (await store.read("call-1", "req-1")).replay == expected
    assert await store.turns("call-1") == [expected]


async def test_a_turn_costs_its_bytes_plus_a_small_header(store: RedisStore, client: Redis) -> None:
    record = TurnRecord(7, "req-7", b"\x01" * 300, b"\x02" * 500)
    assert await store.write("call-1", 0, b"state", record)

    stored = await client.hget(keys_of("call-1")[1], "req-7")

    assert stored is not None
    payload = len("req-7") + 300 + 500
    assert payload < len(stored) <= payload + 32


# --- expiry --------------------------------------------------------------------------------


async def keys_held(client: Redis, call_id: str, count: int) -> list[bytes]:
    """The keys Redis holds for a call, checked to be `count` of the documented ones."""
    held = [key for key in await client.keys(f"dialogue:{{{call_id}}}:*") if isinstance(key, bytes)]
    assert len(held) == count, held
    assert {k.decode() for k in held} <= set(keys_of(call_id)), held
    return held


@pytest.mark.parametrize(("max_turns", "count"), [(10, 2), (1, 3)])
async def test_writes_arm_the_idle_ttl_and_the_ending_write_the_shorter_one(
    redis_url: str, client: Redis, max_turns: int, count: int
) -> None:
    # max_turns 1: the call is trimmed and so has its order key too.
    store = RedisStore(
        redis_url, max_turns=max_turns, idle_ttl_s=IDLE_TTL_S, ended_ttl_s=ENDED_TTL_S
    )
    try:
        await append(store, "call-1", 2)
        # ttl > ENDED_TTL_S tells the two apart with 900 seconds to spare on a slow machine.
        for key in await keys_held(client, "call-1", count):
            assert ENDED_TTL_S < await client.ttl(key) <= IDLE_TTL_S, key

        assert await store.write("call-1", 2, b"over", turn(3), ended=True)

        for key in await keys_held(client, "call-1", count):
            assert 0 < await client.ttl(key) <= ENDED_TTL_S, key
    finally:
        await store.close()


async def test_a_rejected_write_leaves_the_ttl_alone(store: RedisStore, client: Redis) -> None:
    await append(store, "call-1", 1)

    assert not await store.write("call-1", 0, b"stale", turn(2), ended=True)

    for key in await keys_held(client, "call-1", 2):
        assert await client.ttl(key) > ENDED_TTL_S, key


async def test_turns_outliving_their_state_are_forgotten(store: RedisStore, client: Redis) -> None:
    # Stands in for the state key expiring first (or an operator deleting it).
    await append(store, "call-1", 2)
    await client.delete(keys_of("call-1")[0])

    assert await store.read("call-1", "req-1") == Snapshot(state=None, version=0, replay=None)
    assert await store.turns("call-1") == []
    # The call starts afresh: the old request ids and turn numbers are free again.
    assert await store.write("call-1", 0, b"again", turn(1))
    assert await store.turns("call-1") == [turn(1)]
    assert await client.hlen(keys_of("call-1")[1]) == 1


async def test_an_order_outliving_its_state_is_forgotten(redis_url: str, client: Redis) -> None:
    store = RedisStore(redis_url, max_turns=2)
    try:
        await append(store, "call-1", 3)
        state, turns, order = keys_of("call-1")
        await client.delete(state)

        assert await store.write("call-1", 0, b"again", turn(1))

        assert await client.exists(order) == 0
        assert await client.hkeys(turns) == [b"req-1"]
    finally:
        await store.close()


# --- trimming ------------------------------------------------------------------------------


async def test_trimmed_turns_leave_no_request_ids_behind(redis_url: str, client: Redis) -> None:
    store = RedisStore(redis_url, max_turns=2)
    try:
        await append(store, "call-1", 4)

        _, turns, order = keys_of("call-1")
        assert sorted(await client.hkeys(turns)) == [b"req-3", b"req-4"]
        assert await client.zrange(order, 0, -1) == [b"req-3", b"req-4"]
        assert (await store.read("call-1", "req-1")).replay is None
        # A forgotten request id is new again, as in the other stores.
        assert await store.write("call-1", 4, b"state 5", turn(5, request_id="req-1"))
        assert await store.turns("call-1") == [turn(4), turn(5, request_id="req-1")]
    finally:
        await store.close()


async def test_a_smaller_max_turns_trims_many_at_once(redis_url: str, client: Redis) -> None:
    # Replicas restarted with a smaller limit trim a long log on the next write.
    wide = RedisStore(redis_url, max_turns=10)
    narrow = RedisStore(redis_url, max_turns=2)
    try:
        await append(wide, "call-1", 8)
        assert await narrow.write("call-1", 8, b"state 9", turn(9))

        assert await narrow.turns("call-1") == [turn(8), turn(9)]
        assert await client.hlen(keys_of("call-1")[1]) == 2
    finally:
        await wide.close()
        await narrow.close()


# --- replicas ------------------------------------------------------------------------------


async def test_two_replicas_racing_on_one_call_exactly_one_wins(redis_url: str) -> None:
    replicas = [RedisStore(redis_url), RedisStore(redis_url)]
    try:
        await append(replicas[0], "call-1", 1)

        results = await asyncio.gather(
            *(
                replicas[i % 2].write("call-1", 1, f"writer {i}".encode(), turn(2, f"w{i}"))
                for i in range(20)
            )
        )

        assert results.count(True) == 1
        winner = results.index(True)
        for replica in replicas:
            assert await replica.read("call-1", f"w{winner}") == Snapshot(
                state=f"writer {winner}".encode(), version=2, replay=turn(2, f"w{winner}")
            )
            assert await replica.turns("call-1") == [turn(1), turn(2, f"w{winner}")]
    finally:
        for replica in replicas:
            await replica.close()


async def test_the_same_event_on_two_replicas_is_applied_once(redis_url: str) -> None:
    replicas = [RedisStore(redis_url), RedisStore(redis_url)]
    try:
        await append(replicas[0], "call-1", 1)
        # Both replicas read version 1 and decided the same event; only one write lands.
        results = await asyncio.gather(
            *(replica.write("call-1", 1, b"state 2", turn(2)) for replica in replicas)
        )

        assert sorted(results) == [False, True]
        assert (await replicas[1].read("call-1", "req-2")).replay == turn(2)
    finally:
        for replica in replicas:
            await replica.close()


# --- failures ------------------------------------------------------------------------------


async def test_a_key_of_the_wrong_type_is_unavailable_and_nothing_is_written(
    store: RedisStore, client: Redis
) -> None:
    await append(store, "call-1", 1)
    state, turns, _ = keys_of("call-1")
    await client.delete(turns)
    await client.set(turns, b"not a hash")

    with pytest.raises(StoreUnavailableError) as caught:
        await store.write("call-1", 1, b"state 2", turn(2))
    assert isinstance(caught.value.__cause__, ResponseError)
    assert await client.get(state) == b"1:1:state 1"

    with pytest.raises(StoreUnavailableError):
        await store.read("call-1", "req-1")


@pytest.mark.parametrize("value", [b"state", b"1:state", b"x:1:state", b"1::state"])
async def test_an_unreadable_state_is_unavailable_and_nothing_is_written(
    store: RedisStore, client: Redis, value: bytes
) -> None:
    await append(store, "call-1", 1)
    state, turns, _ = keys_of("call-1")
    await client.set(state, value)

    for operation in (
        lambda: store.read("call-1", "req-1"),
        lambda: store.write("call-1", 1, b"state 2", turn(2)),
    ):
        with pytest.raises(StoreUnavailableError) as caught:
            await operation()
        assert isinstance(caught.value.__cause__, ResponseError)
    assert await client.get(state) == value
    assert await client.hkeys(turns) == [b"req-1"]


async def test_a_state_of_the_wrong_type_is_unavailable(store: RedisStore, client: Redis) -> None:
    await client.rpush(keys_of("call-1")[0], b"not a string")

    with pytest.raises(StoreUnavailableError, match="WRONGTYPE"):
        await store.read("call-1", "req-1")
    with pytest.raises(StoreUnavailableError, match="WRONGTYPE"):
        await store.write("call-1", 0, b"state", turn(1))


async def test_an_unreadable_turn_is_unavailable(store: RedisStore, client: Redis) -> None:
    await append(store, "call-1", 1)
    await client.hset(keys_of("call-1")[1], "req-1", b"\x01garbage")

    with pytest.raises(StoreUnavailableError, match="turn record"):
        await store.read("call-1", "req-1")
    with pytest.raises(StoreUnavailableError, match="turn record"):
        await store.turns("call-1")


async def test_errors_name_the_server_but_never_the_password() -> None:
    store = RedisStore(f"redis://:hunter2@127.0.0.1:{free_port()}/3")
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.ping()
    finally:
        await store.close()

    assert "127.0.0.1" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value.__cause__, RedisError)


async def test_a_server_that_never_answers_times_out() -> None:
    # A listening socket nobody accepts from: connecting succeeds, no reply ever comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        store = RedisStore(f"redis://127.0.0.1:{silent.getsockname()[1]}/0", timeout_s=0.2)
        try:
            with pytest.raises(StoreUnavailableError) as caught:
                await store.ping()
            assert isinstance(caught.value.__cause__, RedisError)
            # The scripts' own connections time out alike, within the same bound.
            began = time.monotonic()
            for operation in (
                lambda: store.write("call-1", 0, b"state", turn(1)),
                lambda: store.read("call-1", "req-1"),
            ):
                with pytest.raises(StoreUnavailableError) as caught:
                    await operation()
                assert isinstance(caught.value.__cause__, RedisError)
            assert time.monotonic() - began < 5
        finally:
            await store.close()


async def test_a_script_the_server_forgot_is_loaded_again(store: RedisStore, client: Redis) -> None:
    await append(store, "call-1", 1)
    await client.script_flush()

    assert (await store.read("call-1", "req-1")).replay == turn(1)
    assert await store.write("call-1", 1, b"state 2", turn(2))
    assert await store.turns("call-1") == [turn(1), turn(2)]


async def test_connections_the_server_closed_while_idle_are_replaced_unnoticed(
    store: RedisStore, client: Redis
) -> None:
    # Several calls at once, so that the store holds several idle connections.
    await asyncio.gather(*(append(store, f"call-{n}", 1) for n in range(8)))
    killed = await client.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1
    await asyncio.sleep(0.1)  # the closed sockets' EOF reaches the event loop

    snapshots = await asyncio.gather(*(store.read(f"call-{n}", "req-1") for n in range(8)))

    assert [snapshot.replay for snapshot in snapshots] == [turn(1)] * 8


async def test_a_cancelled_operation_leaves_no_reply_behind(store: RedisStore) -> None:
    await append(store, "call-1", 1)
    for _ in range(20):
        task = asyncio.ensure_future(store.read("call-1", "req-1"))
        await asyncio.sleep(0)  # cancelled once it has sent, before the reply is read
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    # A connection whose reply was never read is not reused: every answer is its own.
    assert (await store.read("call-1", "req-9")).replay is None
    assert await store.write("call-1", 1, b"state 2", turn(2))
    assert (await store.read("call-1", "req-2")).replay == turn(2)


async def test_an_outage_is_unavailable_and_the_same_store_recovers(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    with start_redis(tmp_path / "first") as server:
        store = RedisStore(server.url, timeout_s=0.5)
        try:
            await append(store, "call-1", 1)

            server.process.terminate()
            server.process.wait(10)

            operations: list[Callable[[], Awaitable[object]]] = [
                store.ping,
                lambda: store.read("call-1", "req-1"),
                lambda: store.write("call-1", 1, b"state 2", turn(2)),
                lambda: store.turns("call-1"),
            ]
            for operation in operations:
                with pytest.raises(StoreUnavailableError) as caught:
                    await operation()
                assert isinstance(caught.value.__cause__, RedisError)

            with start_redis(tmp_path / "second", port=server.port):
                await store.ping()
                # The new server kept nothing (no persistence): the call is unknown again.
                assert await store.read("call-1", "req-1") == Snapshot(
                    state=None, version=0, replay=None
                )
                await append(store, "call-1", 2)
                assert await store.turns("call-1") == [turn(1), turn(2)]
        finally:
            await store.close()


# --- replication: WAIT, Cluster, Sentinel --------------------------------------------------


async def test_a_write_no_replica_acknowledged_is_unavailable_and_so_is_its_replay(
    redis_url: str,
) -> None:
    # The shared server has no replica: WAIT 1 can only time out.
    waiting = RedisStore(f"{redis_url}?wait_replicas=1&wait_timeout_ms=10")
    plain = RedisStore(redis_url)
    try:
        with pytest.raises(StoreUnavailableError, match="reached 0 of 1 replicas"):
            await waiting.write("call-1", 0, b"s", turn(1))
        # The turn is on the master, but a retry is not answered with it either: an answer
        # goes out only for a turn that would survive the master's loss.
        assert (await plain.read("call-1", "req-1")).replay == turn(1)
        with pytest.raises(StoreUnavailableError, match="reached 0 of 1 replicas"):
            await waiting.read("call-1", "req-1")
        # A read that finds no replay answers nothing from the turn, so it needs no WAIT.
        assert (await waiting.read("call-1", "req-2")).version == 1
    finally:
        await waiting.close()
        await plain.close()


async def test_with_a_replica_a_write_and_its_replay_are_acknowledged(
    redis_server: RedisServer, redis_url: str, tmp_path: Path
) -> None:
    async with Redis.from_url(redis_url) as master:
        # A sync through a snapshot file starts at once; a diskless one waits up to 5 s for
        # more replicas (Redis 7's default).
        await master.config_set("repl-diskless-sync", "no")
    follower = replica_of(tmp_path, redis_server.port)
    follower.start()
    store = RedisStore(f"{redis_url}?wait_replicas=1&wait_timeout_ms=30000")
    try:
        assert await store.write("call-1", 0, b"s", turn(1))
        assert (await store.read("call-1", "req-1")).replay == turn(1)
        with follower.client() as replica:
            assert replica.get(keys_of("call-1")[0]) == b"1:1:s"
    finally:
        await store.close()
        follower.kill()  # its data is not needed again


async def test_a_cluster_keeps_each_call_on_one_master(redis_cluster_url: str) -> None:
    store = RedisStore(redis_cluster_url)
    try:
        for n in range(30):
            await append(store, f"call-{n}", 2)
    finally:
        await store.close()
    masters: set[str] = set()
    for n in range(30):
        slots = {key_slot(key.encode()) for key in keys_of(f"call-{n}")}
        assert len(slots) == 1
    cluster = RedisCluster.from_url(redis_cluster_url.replace("redis+cluster", "redis"))
    try:
        await cluster.initialize()
        for n in range(30):
            node = cluster.get_node_from_key(keys_of(f"call-{n}")[0])
            assert node is not None
            masters.add(node.name)
    finally:
        await cluster.aclose()
    assert len(masters) == 3  # thirty calls spread over every master


async def test_a_sentinel_failover_keeps_every_acknowledged_turn(tmp_path: Path) -> None:
    with start_sentinel(tmp_path) as topology:
        # After the failover the other replica must first re-attach to the new master, which
        # takes seconds on a busy machine: WAIT is given room for that.
        store = RedisStore(topology.url("?wait_replicas=1&wait_timeout_ms=15000"))
        try:
            for n in range(20):
                await append(store, f"call-{n}", 3)
            topology.master.kill()
            await asyncio.to_thread(topology.wait_failed_over, topology.master.port)
            # The same store, without a restart: the next connection finds the new master.
            for n in range(20):
                assert [t.number for t in await store.turns(f"call-{n}")] == [1, 2, 3]
                assert await store.write(f"call-{n}", 3, b"after", turn(4))
        finally:
            await store.close()
