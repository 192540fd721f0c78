"""The embedded stores forget calls like Redis does: `idle_ttl_s` after a write (rounded up to a
step of at most a hundredth of it), `ended_ttl_s` after the ending write; expired calls read as
unknown at once, and a scheduled sweep removes them (and, for SQLite, the file's freed pages are
reused rather than the file growing)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from server.store import MemoryStore, SqliteStore, TurnRecord
from server.store.expiry import Expiry

IDLE_S = 100
ENDED_S = 10
_BOUND_S = 30.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


ExpiringStore = MemoryStore | SqliteStore
StoreMaker = Callable[..., ExpiringStore]


@pytest.fixture(params=["memory", "sqlite"])
async def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreMaker]:
    opened: list[ExpiringStore] = []

    def make(clock: Callable[[], float] = time.time, idle_s: int = IDLE_S) -> ExpiringStore:
        expiry = Expiry(idle_ttl_s=idle_s, ended_ttl_s=min(idle_s, ENDED_S))
        store: ExpiringStore
        if request.param == "memory":
            store = MemoryStore(expiry=expiry, clock=clock)
        else:
            store = SqliteStore(tmp_path / "calls.db", expiry=expiry, clock=clock)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


def turn(number: int, payload: bytes = b"") -> TurnRecord:
    return TurnRecord(number, f"r{number}", b"request" + payload, b"response" + payload)


async def test_a_call_is_kept_until_its_idle_ttl_then_unknown(make_store: StoreMaker) -> None:
    # Whole seconds on a 1 s step (IDLE_S / 100): no rounding, so no slack (see the next test).
    clock = Clock()
    store = make_store(clock)
    assert await store.write("c1", 0, b"s1", turn(1))
    clock.now += IDLE_S - 1
    assert (await store.read("c1", "r1")).version == 1
    assert await store.write("c1", 1, b"s2", turn(2))  # re-arms the TTL
    clock.now += IDLE_S - 1
    assert [t.number for t in await store.turns("c1")] == [1, 2]
    clock.now += 1
    assert (await store.read("c1", "r1")).state is None
    assert await store.turns("c1") == []
    assert [call async for call in store.call_ids()] == []


async def test_a_call_lives_at_least_its_idle_ttl_and_at_most_one_step_longer(
    make_store: StoreMaker,
) -> None:
    step = Expiry(IDLE_S).step_s
    clock = Clock()
    clock.now += 0.3 * step  # off the step's grid, so the rounding up shows
    store = make_store(clock)
    assert await store.write("c1", 0, b"s1", turn(1))
    clock.now += 0.5 * step  # the same step: SQLite leaves the expiry as it is
    assert await store.write("c1", 1, b"s2", turn(2))
    last_write = clock.now
    clock.now = last_write + IDLE_S - 0.01 * step
    assert (await store.read("c1", "r2")).version == 2  # the TTL of the last write holds
    clock.now = last_write + IDLE_S + 0.1 * step
    assert (await store.read("c1", "r2")).version == 2  # the slack: rounded up
    assert await store.write("c1", 2, b"s3", turn(3))  # the next step: the expiry moves
    last_write = clock.now
    clock.now = last_write + IDLE_S - 0.01 * step
    assert [t.number for t in await store.turns("c1")] == [1, 2, 3]
    clock.now = last_write + IDLE_S + step
    assert (await store.read("c1", "r3")).state is None


@pytest.mark.parametrize(("idle_s", "step_s"), [(86400, 60.0), (6000, 60.0), (100, 1.0), (1, 0.01)])
def test_the_idle_expiry_is_rounded_up_to_its_step_and_the_ending_one_is_exact(
    idle_s: int, step_s: float
) -> None:
    expiry = Expiry(idle_ttl_s=idle_s, ended_ttl_s=7)
    assert expiry.step_s == step_s
    for now in (1_000_000.0, 1_763_719_200.123, 1_763_719_259.999, 1_763_719_260.0):
        expires_at = expiry.expires_at(now, ended=False)
        assert now + idle_s <= expires_at <= now + idle_s + step_s
        # On the grid: every write of one step stores the same expiry.
        assert expires_at == expiry.expires_at(expires_at - idle_s, ended=False)
        assert expiry.expires_at(now, ended=True) == now + 7


async def test_the_ending_write_keeps_the_call_for_the_shorter_ttl(
    make_store: StoreMaker,
) -> None:
    clock = Clock()
    store = make_store(clock)
    assert await store.write("ended", 0, b"s", turn(1), ended=True)
    assert await store.write("open", 0, b"s", turn(1))
    clock.now += ENDED_S
    assert (await store.read("ended", "r1")).state is None
    assert (await store.read("open", "r1")).version == 1


async def test_an_expired_call_starts_afresh_under_the_same_id(make_store: StoreMaker) -> None:
    clock = Clock()
    store = make_store(clock)
    assert await store.write("c1", 0, b"old", turn(1))
    assert await store.write("c1", 1, b"old", turn(2))
    clock.now += IDLE_S
    # Not swept yet, yet the call is unknown: version 0 and its old turns forgotten.
    assert await store.write("c1", 0, b"new", turn(1))
    snapshot = await store.read("c1", "r1")
    assert (snapshot.state, snapshot.version) == (b"new", 1)
    assert [t.number for t in await store.turns("c1")] == [1]


async def test_an_expired_call_refuses_a_write_at_its_old_version(
    make_store: StoreMaker,
) -> None:
    clock = Clock()
    store = make_store(clock)
    assert await store.write("c1", 0, b"old", turn(1))
    clock.now += IDLE_S
    # Expired means unknown: only version 0 may write, so the old version is a conflict.
    assert not await store.write("c1", 1, b"lost", turn(2))
    assert (await store.read("c1", "r2")).state is None
    assert await store.turns("c1") == []


async def test_sweep_removes_expired_calls_only(make_store: StoreMaker) -> None:
    clock = Clock()
    store = make_store(clock)
    for n in range(450):  # more than one SQLite sweep batch
        assert await store.write(f"old-{n}", 0, b"s", turn(1))
    clock.now += IDLE_S - 1
    assert await store.write("fresh", 0, b"s", turn(1))
    clock.now += 1
    assert await store.sweep() == 450
    assert [call async for call in store.call_ids()] == ["fresh"]
    assert await store.sweep() == 0


async def test_the_schedule_sweeps_without_being_asked(make_store: StoreMaker) -> None:
    # A one-second TTL makes the schedule run every second on the real clock.
    store = make_store(idle_s=1)
    assert await store.write("c1", 0, b"s", turn(1))
    deadline = time.monotonic() + _BOUND_S
    while True:
        if not await _holds(store, "c1"):
            break
        assert time.monotonic() < deadline, "the scheduled sweep never ran"
        await asyncio.sleep(0.1)


async def test_sqlite_stores_one_expiry_per_step_and_the_ending_one_at_once(
    tmp_path: Path,
) -> None:
    expiry = Expiry(IDLE_S, ENDED_S)
    clock = Clock()
    store = SqliteStore(tmp_path / "calls.db", expiry=expiry, clock=clock)

    def stored() -> float:
        with sqlite3.connect(store.path) as conn:
            (expires_at,) = conn.execute(
                "SELECT expires_at FROM calls WHERE call_id = 'c1'"
            ).fetchone()
        return float(expires_at)

    try:
        clock.now += 0.25
        assert await store.write("c1", 0, b"s", turn(1))
        first = stored()
        assert first == expiry.expires_at(clock.now, ended=False)
        clock.now += 0.5  # the same 1 s step
        assert await store.write("c1", 1, b"s", turn(2))
        assert stored() == first
        clock.now += 0.5  # the next step
        assert await store.write("c1", 2, b"s", turn(3))
        assert stored() == first + expiry.step_s
        clock.now += 0.1
        assert await store.write("c1", 3, b"s", turn(4), ended=True)
        assert stored() == clock.now + ENDED_S
        # A stale version writes nothing, whichever statement it meets.
        assert not await store.write("c1", 3, b"lost", turn(5))
        assert (await store.read("c1", "r4")).version == 4
    finally:
        await store.close()


async def _holds(store: ExpiringStore, call_id: str) -> bool:
    """Whether the store still physically holds the call, expired or not."""
    if isinstance(store, MemoryStore):
        # The physical content is the point here, so the private dict it is.
        return call_id in store._calls
    with sqlite3.connect(store.path) as conn:
        row = conn.execute("SELECT 1 FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    return row is not None


async def test_sqlite_reuses_the_space_of_expired_calls(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteStore(tmp_path / "calls.db", expiry=Expiry(IDLE_S, ENDED_S), clock=clock)
    payload = bytes(2000)

    async def fill(prefix: str) -> None:
        for n in range(200):
            assert await store.write(f"{prefix}-{n}", 0, b"s", turn(1, payload))

    def pages() -> tuple[int, int]:
        with sqlite3.connect(store.path) as conn:
            (count,) = conn.execute("PRAGMA page_count").fetchone()
            (free,) = conn.execute("PRAGMA freelist_count").fetchone()
        return count, free

    try:
        await fill("first")
        peak, _ = pages()
        clock.now += IDLE_S
        assert await store.sweep() == 200
        after_sweep, free = pages()
        assert after_sweep == peak  # the file keeps its size...
        assert free > peak // 2  # ...with the freed pages on the freelist
        await fill("second")
        refilled, _ = pages()
        # The same amount of data again fits in the freed pages (a little slack for b-tree
        # splits falling differently).
        assert refilled <= peak + peak // 10
    finally:
        await store.close()


async def test_a_file_from_before_expiry_gets_expiry_from_its_last_write(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE calls (call_id TEXT PRIMARY KEY, version INTEGER NOT NULL, "
            "state BLOB NOT NULL, updated_at REAL NOT NULL)"
        )
        conn.execute(
            "CREATE TABLE turns (call_id TEXT NOT NULL, number INTEGER NOT NULL, "
            "request_id TEXT NOT NULL, fingerprint TEXT NOT NULL, request BLOB NOT NULL, "
            "response BLOB NOT NULL, PRIMARY KEY (call_id, number), UNIQUE (call_id, request_id))"
        )
        conn.execute("INSERT INTO calls VALUES ('old', 1, x'00', 500.0)")
        conn.execute("INSERT INTO calls VALUES ('recent', 1, x'00', 999950.0)")
        conn.execute("PRAGMA user_version = 1")
    clock = Clock()
    store = SqliteStore(path, expiry=Expiry(IDLE_S, ENDED_S), clock=clock)
    try:
        assert (await store.read("old", "r1")).state is None
        assert (await store.read("recent", "r1")).version == 1
        assert await store.sweep() == 1
    finally:
        await store.close()


@pytest.mark.parametrize("ttls", [(0, 10), (10, 0)])
def test_ttls_must_be_positive(ttls: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Expiry(*ttls)
