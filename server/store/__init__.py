"""Session stores: per-call state and turn log behind one interface, chosen by URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from server.store.base import SessionStore, Snapshot, StoreUnavailableError, TurnRecord
from server.store.expiry import DEFAULT_ENDED_TTL_S, DEFAULT_IDLE_TTL_S, Expiry
from server.store.memory import MemoryStore
from server.store.redis_url import SCHEMES
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
    "redis://host:port/db, rediss://host:port/db, redis+cluster://host:port[,host:port] or "
    "redis+sentinel://host:port[,host:port]/master_name"
)


def __getattr__(name: str) -> object:
    # redis-py takes a tenth of a second or more to import: only Redis deployments pay for it.
    if name == "RedisStore":
        from server.store.redis import RedisStore  # noqa: PLC0415

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_store(
    url: str,
    *,
    max_turns: int = 500,
    idle_ttl_s: int = DEFAULT_IDLE_TTL_S,
    ended_ttl_s: int = DEFAULT_ENDED_TTL_S,
) -> SessionStore:
    """Creates the store a URL names; nothing is opened until first use.

    Args:
        url: `memory://` for an in-process store; `sqlite:///abs/path.db`,
            `sqlite://relative/path.db` or a plain filesystem path for a SQLite file;
            `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS) for a Redis
            server shared by several replicas; `redis+cluster://host:port[,host:port]` for a
            Redis Cluster (any nodes); `redis+sentinel://host:port[,host:port]/MASTER_NAME`
            for a master watched by Sentinel (see `server.store.redis_url`).
        max_turns: How many of the newest turns to keep per call.
        idle_ttl_s: Seconds a call is kept after its last write, in every store.
        ended_ttl_s: Seconds a call is kept after the write that ended its dialogue.

    Returns:
        The store; call `ping` to check it is usable.

    Raises:
        ValueError: The URL's scheme is not supported, the URL names no database, or a limit
            is not positive.
    """
    expiry = Expiry(idle_ttl_s, ended_ttl_s)
    scheme, separator, rest = url.partition("://")
    if not separator:
        if not url:
            raise ValueError(f"empty session store URL; expected {_ACCEPTED}")
        return SqliteStore(url, max_turns=max_turns, expiry=expiry)
    scheme = scheme.lower()
    if scheme == "memory" and not rest:
        return MemoryStore(max_turns=max_turns, expiry=expiry)
    if scheme == "sqlite" and rest:
        return SqliteStore(rest, max_turns=max_turns, expiry=expiry)
    if scheme in SCHEMES and rest:
        from server.store.redis import RedisStore  # noqa: PLC0415 (see __getattr__)

        return RedisStore(
            f"{scheme}://{rest}",
            max_turns=max_turns,
            idle_ttl_s=idle_ttl_s,
            ended_ttl_s=ended_ttl_s,
        )
    raise ValueError(f"unsupported session store URL {url!r}; expected {_ACCEPTED}")
