"""One behavioural suite for every SessionStore, plus SQLite durability and failure tests.

The Redis-only behaviour (key layout, expiry, outages, failovers) is tested in test_redis.py,
expiry of the embedded stores in test_expiry.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from server.store import (
    MemoryStore,
    RedisStore,
    SessionStore,
    Snapshot,
    SqliteStore,
    StoreUnavailableError,
    TurnRecord,
    open_store,
)

_PROJECT_ROOT = Path(__file__).resolve().parents[3]

StoreMaker = Callable[..., SessionStore]
StoreFactory = Callable[[pytest.FixtureRequest, Path, int], SessionStore]


def _memory(request: pytest.FixtureRequest, tmp_path: Path, max_turns: int) -> SessionStore:
    return MemoryStore(max_turns=max_turns)


def _sqlite(request: pytest.FixtureRequest, tmp_path: Path, max_turns: int) -> SessionStore:
    return SqliteStore(tmp_path / "sessions.db", max_turns=max_turns)


def _redis(request: pytest.FixtureRequest, tmp_path: Path, max_turns: int) -> SessionStore:
    # Looked up here, not requested by make_store, so that only Redis tests start the server;
    # pytest resolves the fixture once per test, so every store of a test shares the database.
    url: str = request.getfixturevalue("redis_url")
    return RedisStore(url, max_turns=max_turns)


def _redis_cluster(request: pytest.FixtureRequest, tmp_path: Path, max_turns: int) -> SessionStore:
    url: str = request.getfixturevalue("redis_cluster_url")
    return RedisStore(url, max_turns=max_turns)


# Every store must pass the shared suite (Redis skips when redis-server is not installed).
_STORES: dict[str, StoreFactory] = {
    "memory": _memory,
    "redis": _redis,
    "redis-cluster": _redis_cluster,
    "sqlite": _sqlite,
}


@pytest.fixture(params=sorted(_STORES))
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreMaker]:
    """Yields a function opening stores of one kind (sharing one backing database)."""
    opened: list[SessionStore] = []

    def make(max_turns: int = 500) -> SessionStore:
        store = _STORES[request.param](request, tmp_path, max_turns)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
def store(make_store: StoreMaker) -> SessionStore:
    return make_store()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "sessions.db")
    yield store
    await store.close()


def turn(number: int, request_id: str | None = None) -> TurnRecord:
    request_id = request_id or f"req-{number}"
    return TurnRecord(
        number=number,
        request_id=request_id,
        request=f"request {request_id}".encode(),
        response=b"\x00\xffresponse " + request_id.encode(),
    )


async def append(store: SessionStore, call_id: str, count: int) -> None:
    """Applies `count` turns to a fresh call, one write per turn."""
    for number in range(1, count + 1):
        assert await store.write(call_id, number - 1, f"state {number}".encode(), turn(number))


# --- every store ---------------------------------------------------------------------------


async def test_unknown_call(store: SessionStore) -> None:
    assert await store.read("call-1", "req-1") == Snapshot(state=None, version=0, replay=None)
    assert await store.turns("call-1") == []


async def test_first_write_expects_version_zero(store: SessionStore) -> None:
    assert await store.write("call-1", 0, b"state 1", turn(1))

    snapshot = await store.read("call-1", "req-other")
    assert snapshot == Snapshot(state=b"state 1", version=1, replay=None)
    assert await store.turns("call-1") == [turn(1)]


async def test_first_write_with_nonzero_version_is_rejected(store: SessionStore) -> None:
    assert not await store.write("call-1", 1, b"state", turn(1))

    assert await store.read("call-1", "req-1") == Snapshot(state=None, version=0, replay=None)
    assert await store.turns("call-1") == []


async def test_each_write_increments_the_version(store: SessionStore) -> None:
    await append(store, "call-1", 3)

    snapshot = await store.read("call-1", "req-x")
    assert snapshot.version == 3
    assert snapshot.state == b"state 3"


async def test_a_write_that_ends_the_dialogue_is_stored_like_any_other(
    store: SessionStore,
) -> None:
    await append(store, "call-1", 1)

    assert await store.write("call-1", 1, b"over", turn(2), ended=True)

    assert await store.read("call-1", "req-2") == Snapshot(state=b"over", version=2, replay=turn(2))
    assert await store.turns("call-1") == [turn(1), turn(2)]


async def test_empty_state_is_kept(store: SessionStore) -> None:
    assert await store.write("call-1", 0, b"", turn(1))

    assert (await store.read("call-1", "req-1")).state == b""


@pytest.mark.parametrize("stale_version", [0, 1, 3])
async def test_stale_version_is_rejected_and_nothing_written(
    store: SessionStore, stale_version: int
) -> None:
    await append(store, "call-1", 2)

    assert not await store.write("call-1", stale_version, b"lost", turn(3))

    assert await store.read("call-1", "req-3") == Snapshot(state=b"state 2", version=2, replay=None)
    assert await store.turns("call-1") == [turn(1), turn(2)]


async def test_duplicate_request_id_is_rejected_and_nothing_written(store: SessionStore) -> None:
    await append(store, "call-1", 2)

    assert not await store.write("call-1", 2, b"lost", turn(3, request_id="req-1"))

    snapshot = await store.read("call-1", "req-1")
    assert (snapshot.state, snapshot.version) == (b"state 2", 2)
    assert await store.turns("call-1") == [turn(1), turn(2)]


async def test_replay_is_found_by_request_id_with_identical_bytes(store: SessionStore) -> None:
    await append(store, "call-1", 3)

    snapshot = await store.read("call-1", "req-2")

    assert snapshot.replay == turn(2)
    assert snapshot.replay is not None
    assert snapshot.replay.response == b"\x00\xffresponse req-2"
    assert type(snapshot.replay.response) is bytes


async def test_turns_are_oldest_first_and_trimmed_to_max_turns(make_store: StoreMaker) -> None:
    store = make_store(max_turns=3)

    await append(store, "call-1", 5)

    assert await store.turns("call-1") == [turn(3), turn(4), turn(5)]
    assert (await store.read("call-1", "req-5")).replay == turn(5)
    # A trimmed turn is forgotten: its request id no longer replays.
    assert (await store.read("call-1", "req-1")).replay is None


async def test_turns_written_out_of_order_are_kept_in_number_order(
    make_store: StoreMaker,
) -> None:
    store = make_store(max_turns=2)
    assert await store.write("call-1", 0, b"state", turn(3))
    assert await store.write("call-1", 1, b"state", turn(1))
    assert await store.turns("call-1") == [turn(1), turn(3)]

    # Trimming drops the lowest numbers, whatever order they came in.
    assert await store.write("call-1", 2, b"state", turn(2))

    assert await store.turns("call-1") == [turn(2), turn(3)]
    assert (await store.read("call-1", "req-1")).replay is None


async def test_max_turns_must_be_positive(make_store: StoreMaker) -> None:
    with pytest.raises(ValueError, match="max_turns"):
        make_store(max_turns=0)


async def test_reused_turn_number_is_a_caller_error(store: SessionStore) -> None:
    await append(store, "call-1", 2)

    with pytest.raises(ValueError, match="turn 2"):
        await store.write("call-1", 2, b"bad", turn(2, request_id="req-new"))

    assert (await store.read("call-1", "req-new")).version == 2
    assert await store.turns("call-1") == [turn(1), turn(2)]


async def test_concurrent_writers_on_one_call_exactly_one_wins(store: SessionStore) -> None:
    await append(store, "call-1", 1)

    results = await asyncio.gather(
        *(store.write("call-1", 1, f"writer {i}".encode(), turn(2, f"w{i}")) for i in range(20))
    )

    assert results.count(True) == 1
    winner = results.index(True)
    snapshot = await store.read("call-1", f"w{winner}")
    assert snapshot == Snapshot(
        state=f"writer {winner}".encode(), version=2, replay=turn(2, f"w{winner}")
    )
    assert await store.turns("call-1") == [turn(1), turn(2, f"w{winner}")]


async def test_calls_are_isolated(store: SessionStore) -> None:
    await append(store, "call-a", 2)
    # The same request ids and turn numbers in another call do not collide.
    await append(store, "call-b", 1)

    assert (await store.read("call-a", "req-1")).version == 2
    assert (await store.read("call-b", "req-2")) == Snapshot(
        state=b"state 1", version=1, replay=None
    )
    assert await store.turns("call-a") == [turn(1), turn(2)]
    assert await store.turns("call-b") == [turn(1)]
    assert await store.read("call-c", "req-1") == Snapshot(state=None, version=0, replay=None)


async def test_call_ids_lists_every_call_once(store: SessionStore) -> None:
    odd = "100001616500^100001871490{x}%"
    for call_id in ("call-a", "call-b", odd):
        await append(store, call_id, 1)

    assert sorted([call_id async for call_id in store.call_ids()]) == sorted(
        ["call-a", "call-b", odd]
    )


async def test_ping(store: SessionStore) -> None:
    await store.ping()


async def test_closed_store_is_unavailable_and_close_is_idempotent(store: SessionStore) -> None:
    await store.close()
    await store.close()

    with pytest.raises(StoreUnavailableError):
        await store.ping()
    with pytest.raises(StoreUnavailableError):
        await store.read("call-1", "req-1")


# --- SQLite durability ---------------------------------------------------------------------


async def test_sqlite_data_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    first = SqliteStore(path, max_turns=10)
    await append(first, "call-1", 3)
    await first.close()

    second = SqliteStore(path, max_turns=10)
    try:
        assert await second.read("call-1", "req-3") == Snapshot(
            state=b"state 3", version=3, replay=turn(3)
        )
        assert await second.turns("call-1") == [turn(1), turn(2), turn(3)]
        assert await second.write("call-1", 3, b"state 4", turn(4))
    finally:
        await second.close()


async def test_sqlite_creates_the_file_and_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "sessions.db"
    store = SqliteStore(path)
    try:
        await store.ping()
        assert path.is_file()
    finally:
        await store.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 1
    conn.close()


async def test_sqlite_two_processes_sharing_the_file_exactly_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    replicas = [SqliteStore(path), SqliteStore(path)]
    try:
        await append(replicas[0], "call-1", 1)
        results = await asyncio.gather(
            *(replicas[i % 2].write("call-1", 1, b"state", turn(2, f"w{i}")) for i in range(10))
        )
        assert results.count(True) == 1
        assert (await replicas[1].read("call-1", "x")).version == 2
    finally:
        for replica in replicas:
            await replica.close()


_WRITE_AND_WAIT = """
import asyncio, sys
from server.store import TurnRecord, open_store

async def main() -> None:
    store = open_store(sys.argv[1])
    turn = TurnRecord(1, "req-1", b"request", b"response")
    ok = await store.write("call-1", 0, b"committed", turn)
    print("written" if ok else "rejected", flush=True)
    await asyncio.sleep(3600)  # keep the connection open until killed

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
async def test_sqlite_committed_write_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_WRITE_AND_WAIT), str(path)],
        cwd=_PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        assert child.stdout is not None
        assert child.stderr is not None
        try:
            line = child.stdout.readline()
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        assert line == b"written\n", child.stderr.read().decode()
        assert child.returncode == -signal.SIGKILL

    store = SqliteStore(path)
    try:
        snapshot = await store.read("call-1", "req-1")
    finally:
        await store.close()
    assert snapshot == Snapshot(
        state=b"committed",
        version=1,
        replay=TurnRecord(1, "req-1", b"request", b"response"),
    )


# --- SQLite failures -----------------------------------------------------------------------


async def test_sqlite_corrupt_file_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    path.write_bytes(b"this is not a database, " * 200)
    store = SqliteStore(path)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.ping()
        assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
        with pytest.raises(StoreUnavailableError):
            await store.read("call-1", "req-1")
        with pytest.raises(StoreUnavailableError):
            await store.write("call-1", 0, b"state", turn(1))
        with pytest.raises(StoreUnavailableError):
            await store.turns("call-1")
    finally:
        await store.close()


async def test_sqlite_path_that_is_a_directory_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.ping()
        assert isinstance(caught.value.__cause__, sqlite3.Error)
    finally:
        await store.close()


async def test_sqlite_parent_that_is_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = SqliteStore(tmp_path / "file" / "sessions.db")
    try:
        with pytest.raises(StoreUnavailableError):
            await store.ping()
    finally:
        await store.close()


async def test_sqlite_locked_database_is_unavailable_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SqliteStore(path, busy_timeout_ms=50)
    try:
        await store.ping()
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreUnavailableError) as caught:
                await store.write("call-1", 0, b"state", turn(1))
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            other.execute("ROLLBACK")
        finally:
            other.close()

        assert await store.write("call-1", 0, b"state", turn(1))
    finally:
        await store.close()


async def test_sqlite_write_waits_out_another_connections_lock(tmp_path: Path) -> None:
    # The write starts on the loop thread, finds the lock taken and waits for it on the store's
    # thread (with the full busy timeout) instead of failing or stalling the loop.
    path = tmp_path / "sessions.db"
    store = SqliteStore(path, busy_timeout_ms=30_000)
    try:
        await store.ping()
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            writing = asyncio.create_task(store.write("call-1", 0, b"state", turn(1)))
            await asyncio.sleep(0.2)  # the loop keeps running meanwhile
            assert not writing.done()
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert await writing
        assert (await store.read("call-1", "")).version == 1
    finally:
        await store.close()


async def test_sqlite_reads_go_on_while_another_connection_holds_the_write_lock(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sessions.db"
    store = SqliteStore(path, busy_timeout_ms=30_000)
    try:
        await append(store, "call-1", 1)
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN EXCLUSIVE")
            # A WAL reader does not wait for the writer: the read answers at once.
            snapshot = await asyncio.wait_for(store.read("call-1", "req-1"), 1.0)
            assert (snapshot.version, snapshot.replay) == (1, turn(1))
            other.execute("ROLLBACK")
        finally:
            other.close()
    finally:
        await store.close()


async def test_sqlite_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.close()
    store = SqliteStore(path)
    try:
        with pytest.raises(StoreUnavailableError, match="schema version 999"):
            await store.ping()
    finally:
        await store.close()


# --- open_store ----------------------------------------------------------------------------


async def test_open_store_memory() -> None:
    store = open_store("memory://", max_turns=7)
    try:
        assert isinstance(store, MemoryStore)
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///abs/dir/sessions.db", Path("/abs/dir/sessions.db")),
        ("SQLite:///abs/sessions.db", Path("/abs/sessions.db")),
        ("sqlite://relative/dir/sessions.db", Path("relative/dir/sessions.db")),
        ("/var/lib/dialogue/sessions.db", Path("/var/lib/dialogue/sessions.db")),
        ("data/sessions.db", Path("data/sessions.db")),
    ],
)
async def test_open_store_sqlite(url: str, expected: Path) -> None:
    store = open_store(url)
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == expected
    finally:
        await store.close()


async def test_open_store_sqlite_is_usable(tmp_path: Path) -> None:
    store = open_store(f"sqlite://{tmp_path}/sessions.db", max_turns=2)
    try:
        await append(store, "call-1", 3)
        assert await store.turns("call-1") == [turn(2), turn(3)]
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "REDIS://127.0.0.1:6379/0",
        "rediss://:secret@cache.example:6380/2",
        "redis://127.0.0.1",
    ],
)
async def test_open_store_redis_connects_to_nothing_yet(url: str) -> None:
    store = open_store(url, max_turns=7, idle_ttl_s=60, ended_ttl_s=10)
    try:
        assert isinstance(store, RedisStore)
    finally:
        await store.close()


async def test_open_store_redis_is_usable(redis_url: str) -> None:
    store = open_store(redis_url, max_turns=2)
    try:
        await append(store, "call-1", 3)
        assert await store.turns("call-1") == [turn(2), turn(3)]
    finally:
        await store.close()


def test_only_redis_urls_import_redis_py() -> None:
    # A fresh interpreter: this one has imported redis-py for the Redis tests already.
    check = (
        "import sys; from server.store import open_store; open_store('memory://'); "
        "assert 'redis' not in sys.modules; open_store('redis://127.0.0.1'); "
        "assert 'redis' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", check], cwd=_PROJECT_ROOT, check=True, timeout=60)


@pytest.mark.parametrize(
    "url", ["postgres://db/sessions", "memory://x", "sqlite://", "redis://", "rediss://", ""]
)
def test_open_store_rejects_unknown_urls(url: str) -> None:
    with pytest.raises(ValueError, match=r"memory://, sqlite://.*redis://"):
        open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "sqlite://relative/sessions.db",
        "redis://127.0.0.1:6379/0",
        "redis+cluster://127.0.0.1:7000",
        "redis+sentinel://127.0.0.1:26379/dialogue",
    ],
)
@pytest.mark.parametrize(
    "options",
    [{"idle_ttl_s": 0}, {"ended_ttl_s": -1}, {"max_turns": 0}],
)
def test_open_store_rejects_bad_limits(url: str, options: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        open_store(url, **options)


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "REDIS+SENTINEL://:secret@127.0.0.1:26379,127.0.0.1:26380/dialogue?wait_replicas=1",
    ],
)
async def test_open_store_other_redis_topologies_connect_to_nothing_yet(url: str) -> None:
    store = open_store(url)
    try:
        assert isinstance(store, RedisStore)
    finally:
        await store.close()
