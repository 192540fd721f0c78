"""Session stores: per-call state and turn log behind one interface, chosen by URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.store.base import SessionStore, Snapshot, StoreUnavailableError, TurnRecord
from server.store.memory import MemoryStore
from server.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from server.store.redis import RedisStore

__all__ = [
    "MemoryStore",
    "RedisStore",
    "SessionStore",
    "Snapshot",
    "SqliteStore",
    "StoreUnavailableError",
    "TurnRecord",
    "open_store",
]

_ACCEPTED = (
    "memory://, sqlite:///absolute/path.db, sqlite://relative/path.db, a bare file path, "
    "redis://host:port/db or rediss://host:port/db"
)


def __getattr__(name: str) -> object:
    # redis-py takes a tenth of a second or more to import: only Redis deployments pay for it.
    if name == "RedisStore":
        from server.store.redis import RedisStore  # noqa: PLC0415

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(
    url: str, *, max_turns: int = 500, idle_ttl_s: int = 86400, ended_ttl_s: int = 3600
) -> SessionStore:
    """Creates the store a URL names; nothing is opened until first use.

    Args:
        url: `memory://` for an in-process store; `sqlite:///abs/path.db`,
            `sqlite://relative/path.db` or a plain filesystem path for a SQLite file;
            `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS) for a Redis
            server shared by several replicas.
        max_turns: How many of the newest turns to keep per call.
        idle_ttl_s: Seconds a call is kept after its last write. Expiry is Redis-only for now:
            the memory and SQLite stores ignore this and keep calls forever.
        ended_ttl_s: Seconds a call is kept after the write that ended its dialogue (Redis-only
            too).

    Returns:
        The store; call `ping` to check it is usable.

    Raises:
        ValueError: The URL's scheme is not supported, the URL names no database, or a limit
            is not positive.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        if not url:
            raise ValueError(f"empty session store URL; expected {_ACCEPTED}")
        return SqliteStore(url, max_turns=max_turns)
    scheme = scheme.lower()
    if scheme == "memory" and not rest:
        return MemoryStore(max_turns=max_turns)
    if scheme == "sqlite" and rest:
        return SqliteStore(rest, max_turns=max_turns)
    if scheme in ("redis", "rediss") and rest:
        from server.store.redis import RedisStore  # noqa: PLC0415 (see __getattr__)

        # redis-py only knows the schemes in lower case.
        return RedisStore(
            f"{scheme}://{rest}",
            max_turns=max_turns,
            idle_ttl_s=idle_ttl_s,
            ended_ttl_s=ended_ttl_s,
        )
    raise ValueError(f"unsupported session store URL {url!r}; expected {_ACCEPTED}")
