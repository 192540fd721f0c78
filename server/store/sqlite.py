"""The embedded, durable session store: one SQLite file in WAL mode.

Reads and writes run on the event loop's thread through one connection of their own: in WAL mode
with synchronous=NORMAL a commit appends to the WAL without an fsync (tens of microseconds), less
than the hop to a worker thread and back (the bench measured the hop at ~30% of the service's
CPU per decision). Only when another connection holds the write lock does a write move to the
store's own thread, which waits there for up to the busy timeout, so the loop never stalls for
longer than _LOOP_BUSY_TIMEOUT_MS (a read that finds a lock, which WAL readers rarely do, moves
the same way). Everything else (turn logs, export, ping) runs on that thread too. Several
processes may open the same file: `BEGIN IMMEDIATE` plus the version check in the UPDATE make
their writes compare-and-set.

Calls expire (see `server.store.expiry`): every write stores when the call expires, reads treat an
expired call as unknown, and a scheduled sweep deletes expired calls and their turns in small
transactions. The idle expiry is rounded up to a step (at most a minute: a call may live up to
one step longer than its TTL), so a turn in the step of the call's previous write leaves the
expiry, and the calls_by_expiry index with it, untouched (see _set_state); the ending write
always sets its exact, shorter expiry. The file does not shrink: SQLite puts the freed pages on
its freelist and the next inserts reuse them (no VACUUM, no auto_vacuum), so the file grows only
to the peak of what is live at once, then stays that size.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from os import PathLike
from pathlib import Path
from typing import Final, TypeVar

from server.store.base import Snapshot, StoreUnavailableError, TurnRecord
from server.store.expiry import Expiry, Sweeper

_T = TypeVar("_T")

# _MIGRATIONS[i] takes the schema from version i to i + 1; append, never edit.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """
        CREATE TABLE calls (
            call_id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            state BLOB NOT NULL,
            updated_at REAL NOT NULL
        )
        """,
        """
        CREATE TABLE turns (
            call_id TEXT NOT NULL,
            number INTEGER NOT NULL,
            request_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            request BLOB NOT NULL,
            response BLOB NOT NULL,
            PRIMARY KEY (call_id, number),
            UNIQUE (call_id, request_id)
        )
        """,
    ),
    (
        # NULL until the store first opens the file after this migration (see _connect): the
        # TTL is a setting of the server, not of the schema.
        "ALTER TABLE calls ADD COLUMN expires_at REAL",
        "CREATE INDEX calls_by_expiry ON calls (expires_at)",
    ),
)
SCHEMA_VERSION: Final = len(_MIGRATIONS)

_TURN_COLUMN_NAMES: Final = ("number", "request_id", "request", "response")
_TURN_COLUMNS: Final = ", ".join(_TURN_COLUMN_NAMES)
# The column of schema 1 where each turn kept a digest of its event: the service now computes it
# from the request when a retry needs it, so new rows leave it empty (saving its bytes per turn).
_NO_FINGERPRINT: Final = ""


class _ConflictError(Exception):
    """Another writer won; the write transaction must roll back."""


class SqliteStore:
    """Session store in a SQLite database file; calls expire (see the module docstring)."""

    # See SessionStore: reads and writes run on the loop thread; only opening the file, a busy
    # write lock and the turn log wait for the store's thread (a plain executor future).
    starts_inline = True

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        max_turns: int = 500,
        busy_timeout_ms: int = 5000,
        expiry: Expiry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Prepares the store; the file is opened (and created) on first use.

        Args:
            path: The database file. Missing parent directories are created.
            max_turns: How many of the newest turns to keep per call.
            busy_timeout_ms: How long to wait for another process's write lock before failing
                with StoreUnavailableError.
            expiry: How long calls are kept after their last write (the defaults when None).
            clock: The time in seconds (tests pass their own).

        Raises:
            ValueError: max_turns is less than 1.
        """
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        self._path = Path(path)
        self._max_turns = max_turns
        self._busy_timeout_ms = busy_timeout_ms
        self._expiry = expiry or Expiry()
        self._clock = clock
        self._sweeper = Sweeper(self.sweep, self._expiry.sweep_interval_s)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._conn: sqlite3.Connection | None = None  # touched only on the executor thread
        # The loop thread's connection for reads and writes (see the module docstring); opened
        # and used on that thread.
        self._loop_writer: sqlite3.Connection | None = None
        self._closed = False

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    async def read(self, call_id: str, request_id: str) -> Snapshot:
        """See `SessionStore.read`."""
        now = self._clock()
        try:
            # The loop's writer reads too: its page cache holds what its last commits wrote,
            # where a connection of its own would find its cache stale after every write
            # (SQLite drops it when another connection changed the file) and read it again.
            return _read(await self._loop_connection(), call_id, request_id, now)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                self._close_loop_writer()
                raise StoreUnavailableError(f"sqlite store {self._path}: {exc}") from exc
        except (sqlite3.Error, OSError) as exc:
            self._close_loop_writer()  # reopened on next use, e.g. after the file was repaired
            raise StoreUnavailableError(f"sqlite store {self._path}: {exc}") from exc
        # A WAL reader rarely waits (another connection recovering the WAL, say); when it does,
        # it waits on the store's thread like a write, not on the loop.
        return await self._run(lambda conn: _read(conn, call_id, request_id, now))

    async def write(
        self,
        call_id: str,
        expected_version: int,
        state: bytes,
        turn: TurnRecord,
        *,
        ended: bool = False,
    ) -> bool:
        """See `SessionStore.write`; `ended` shortens the call's expiry to `ended_ttl_s`.

        Raises:
            StoreUnavailableError: The database failed; nothing was written.
            ValueError: A turn with the same number is already kept for the call (a caller bug).
        """

        self._sweeper.ensure_started()
        now = self._clock()
        expires_at = self._expiry.expires_at(now, ended=ended)

        def job(conn: sqlite3.Connection) -> bool:
            return _write(
                conn,
                call_id,
                expected_version,
                state,
                turn,
                max_turns=self._max_turns,
                now=now,
                expires_at=expires_at,
                ended=ended,
            )

        try:
            return job(await self._loop_connection())
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                self._close_loop_writer()
                raise StoreUnavailableError(f"sqlite store {self._path}: {exc}") from exc
        except (sqlite3.Error, OSError) as exc:
            self._close_loop_writer()  # reopened on next use
            raise StoreUnavailableError(f"sqlite store {self._path}: {exc}") from exc
        # Another connection holds the write lock: wait for it off the loop. The transaction
        # rolled back, so the write is retried whole.
        return await self._run(job)

    async def _loop_connection(self) -> sqlite3.Connection:
        if self._loop_writer is None:
            # The store thread creates the file and its schema first.
            await self._run(lambda conn: None)
            # A failure here is handled by the caller, like the write's own (busy: off the loop).
            self._loop_writer = _connect(
                self._path, min(self._busy_timeout_ms, _LOOP_BUSY_TIMEOUT_MS)
            )
        return self._loop_writer

    def _close_loop_writer(self) -> None:
        if self._loop_writer is not None:
            self._loop_writer.close()
            self._loop_writer = None

    async def turns(self, call_id: str) -> list[TurnRecord]:
        """See `SessionStore.turns`."""
        now = self._clock()
        return await self._run(lambda conn: _turns(conn, call_id, now))

    async def sweep(self) -> int:
        """Deletes every call expired by now, with its turns; returns how many calls.

        The schedule calls this every `Expiry.sweep_interval_s`; it runs in batches of
        `_SWEEP_BATCH` calls per transaction so that decisions are never held up for long.
        """
        now = self._clock()
        removed = 0
        while True:
            batch = await self._run(functools.partial(_delete_expired, now=now))
            removed += batch
            if batch < _SWEEP_BATCH:
                return removed

    async def call_ids(self) -> AsyncIterator[str]:
        """See `SessionStore.call_ids`; pages through the table so memory stays flat."""
        after = ""
        while True:
            page = await self._run(
                functools.partial(_call_ids_after, after=after, now=self._clock())
            )
            for call_id in page:
                yield call_id
            if len(page) < _EXPORT_PAGE:
                return
            after = page[-1]

    async def ping(self) -> None:
        """See `SessionStore.ping`."""
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        """See `SessionStore.close`; safe to call twice.

        Work already submitted finishes first: the executor runs jobs in order.
        """
        if self._closed:
            return
        self._closed = True
        await self._sweeper.stop()
        self._close_loop_writer()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._disconnect)
        finally:
            # The worker is idle by now, so joining it is quick; still, not on the loop.
            await asyncio.to_thread(self._executor.shutdown)

    async def _run(self, job: Callable[[sqlite3.Connection], _T]) -> _T:
        if self._closed:
            raise StoreUnavailableError(f"the sqlite store {self._path} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, job)

    def _call(self, job: Callable[[sqlite3.Connection], _T]) -> _T:
        """Runs job on the store thread, translating database failures."""
        try:
            return job(self._connection())
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(f"sqlite store {self._path}: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        # Opened lazily and retried on every call, so a store created while the disk was
        # unavailable recovers once it is back.
        if self._conn is None:
            self._conn = _connect(self._path, self._busy_timeout_ms)
            # Calls written before expiry existed (schema 1) expire one idle TTL after their
            # last write, as if they had been written with it.
            self._conn.execute(
                "UPDATE calls SET expires_at = updated_at + ? WHERE expires_at IS NULL",
                (self._expiry.idle_ttl_s,),
            )
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


def _busy(error: sqlite3.OperationalError) -> bool:
    """Whether another connection held a lock (rather than the database failing)."""
    return error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: the module must not open transactions behind our back;
    # every transaction here is explicit.
    conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL loses nothing when the process dies, only on power loss.
        conn.execute("PRAGMA synchronous = NORMAL")
        _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


# A write on the loop thread waits at most this long for the write lock before it moves to the
# store's thread (which waits up to the configured busy timeout).
_LOOP_BUSY_TIMEOUT_MS = 20


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    with _transaction(conn, "BEGIN IMMEDIATE"):
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StoreUnavailableError(
                f"{path} has schema version {version}; this server knows up to {SCHEMA_VERSION}"
            )
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                conn.execute(statement)
        # PRAGMA does not take bound parameters; SCHEMA_VERSION is our own int.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """Commits when the body returns, rolls back when it raises."""
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            # A failing rollback must not hide the error that caused it.
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


# Built once: joining the column names per read cost ~2 µs (a tenth of the read).
_READ: Final = f"""
    SELECT c.version, c.state, {", ".join("t." + column for column in _TURN_COLUMN_NAMES)}
    FROM calls AS c LEFT JOIN turns AS t ON t.call_id = c.call_id AND t.request_id = ?
    WHERE c.call_id = ? AND c.expires_at > ?
"""
_INSERT_TURN: Final = (
    f"INSERT INTO turns (call_id, fingerprint, {_TURN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
)
# The state's compare-and-set (see _set_state).
_SET_STATE_SAME_EXPIRY: Final = """
    UPDATE calls SET version = ?, state = ?, updated_at = ?
    WHERE call_id = ? AND version = ? AND expires_at = ?
"""
_SET_STATE: Final = """
    UPDATE calls SET version = ?, state = ?, updated_at = ?, expires_at = ?
    WHERE call_id = ? AND version = ? AND expires_at > ?
"""


def _read(conn: sqlite3.Connection, call_id: str, request_id: str, now: float) -> Snapshot:
    # One statement, so state and replay come from the same commit without a transaction's
    # BEGIN/COMMIT round trips; the LEFT JOIN finds the earlier turn of this request, if any.
    row = conn.execute(_READ, (request_id, call_id, now)).fetchone()
    if row is None:
        return Snapshot(state=None, version=0, replay=None)
    replay = None if row[2] is None else TurnRecord(*row[2:])
    return Snapshot(state=row[1], version=row[0], replay=replay)


def _write(
    conn: sqlite3.Connection,
    call_id: str,
    expected_version: int,
    state: bytes,
    turn: TurnRecord,
    *,
    max_turns: int,
    now: float,
    expires_at: float,
    ended: bool,
) -> bool:
    # Three statements in the common case (the state's compare-and-set, the turn, the commit):
    # the version check is the UPDATE's WHERE clause, the request id's the turns table's UNIQUE
    # constraint, and the rare cases (a new call under an expired id, a duplicate) pay for
    # their own look-ups.
    # IMMEDIATE takes the write lock up front, so nothing read below can go stale before the
    # commit (a deferred transaction could fail to upgrade instead).
    try:
        with _transaction(conn, "BEGIN IMMEDIATE"):
            if not _set_state(
                conn,
                call_id,
                expected_version,
                state,
                now=now,
                expires_at=expires_at,
                ended=ended,
            ):
                raise _ConflictError
            try:
                conn.execute(
                    _INSERT_TURN,
                    (
                        call_id,
                        _NO_FINGERPRINT,
                        turn.number,
                        turn.request_id,
                        turn.request,
                        turn.response,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                duplicate = conn.execute(
                    "SELECT 1 FROM turns WHERE call_id = ? AND request_id = ?",
                    (call_id, turn.request_id),
                ).fetchone()
                if duplicate is not None:
                    # This request was applied already: a conflict, like a stale version.
                    raise _ConflictError from exc
                raise ValueError(
                    f"turn {turn.number} is already recorded for call {call_id!r}"
                ) from exc
            if expected_version + 1 > max_turns:
                # Every write appends one turn, so the version counts the turns ever written:
                # only a call that outgrew the log pays for trimming it.
                conn.execute(
                    """
                    DELETE FROM turns WHERE call_id = ? AND number <= (
                        SELECT number FROM turns WHERE call_id = ?
                        ORDER BY number DESC LIMIT 1 OFFSET ?
                    )
                    """,
                    (call_id, call_id, max_turns),
                )
    except _ConflictError:
        return False
    return True


def _set_state(
    conn: sqlite3.Connection,
    call_id: str,
    expected_version: int,
    state: bytes,
    *,
    now: float,
    expires_at: float,
    ended: bool,
) -> bool:
    """Stores the state as expected_version + 1 if the live call is at expected_version.

    `ended`: this write ends the call, so its expiry (exact, see Expiry) surely moves.
    """
    if expected_version > 0:
        # Most turns fall in the expiry step of the call's previous write (see Expiry), so the
        # first statement, which does not name expires_at, usually does it all: an UPDATE that
        # names an indexed column rewrites its index entry even when the value is unchanged
        # (measured: a page of calls_by_expiry per turn, two with a thousand calls interleaved,
        # of the six or seven a turn's commit appends to the WAL). Its WHERE also checks that
        # the call is live, the expiry being in the future. When the expiry moved (or the
        # version is stale, or the call expired), the second statement sets it; the ending write
        # goes there at once.
        if not ended and (
            conn.execute(
                _SET_STATE_SAME_EXPIRY,
                (expected_version + 1, state, now, call_id, expected_version, expires_at),
            ).rowcount
            == 1
        ):
            return True
        # An expired call is unknown (version 0), so it cannot match a version above 0.
        return (
            conn.execute(
                _SET_STATE,
                (expected_version + 1, state, now, expires_at, call_id, expected_version, now),
            ).rowcount
            == 1
        )
    insert = (
        "INSERT INTO calls (call_id, version, state, updated_at, expires_at) "
        "VALUES (?, 1, ?, ?, ?) ON CONFLICT (call_id) DO NOTHING"
    )
    if conn.execute(insert, (call_id, state, now, expires_at)).rowcount == 1:
        return True
    row = conn.execute("SELECT expires_at FROM calls WHERE call_id = ?", (call_id,)).fetchone()
    if row[0] > now:
        return False  # the call exists: version 0 is stale
    # Expired but not swept yet: the call is unknown, so it starts afresh.
    _delete_call(conn, call_id)
    conn.execute(insert, (call_id, state, now, expires_at))
    return True


def _delete_call(conn: sqlite3.Connection, call_id: str) -> None:
    conn.execute("DELETE FROM turns WHERE call_id = ?", (call_id,))
    conn.execute("DELETE FROM calls WHERE call_id = ?", (call_id,))


_SWEEP_BATCH = 200


def _delete_expired(conn: sqlite3.Connection, now: float) -> int:
    """Deletes up to _SWEEP_BATCH expired calls in one transaction; returns how many."""
    with _transaction(conn, "BEGIN IMMEDIATE"):
        expired = conn.execute(
            "SELECT call_id FROM calls WHERE expires_at <= ? LIMIT ?", (now, _SWEEP_BATCH)
        ).fetchall()
        for (call_id,) in expired:
            _delete_call(conn, call_id)
    return len(expired)


_EXPORT_PAGE = 1000


def _call_ids_after(conn: sqlite3.Connection, after: str, now: float) -> list[str]:
    rows = conn.execute(
        "SELECT call_id FROM calls WHERE call_id > ? AND expires_at > ? ORDER BY call_id LIMIT ?",
        (after, now, _EXPORT_PAGE),
    ).fetchall()
    return [row[0] for row in rows]


def _turns(conn: sqlite3.Connection, call_id: str, now: float) -> list[TurnRecord]:
    rows = conn.execute(
        f"""
        SELECT {_TURN_COLUMNS} FROM turns WHERE call_id = ? AND EXISTS (
            SELECT 1 FROM calls WHERE call_id = ? AND expires_at > ?
        ) ORDER BY number
        """,
        (call_id, call_id, now),
    ).fetchall()
    return [TurnRecord(*row) for row in rows]
