"""Session stores: per-call state and turn log behind one interface, chosen by URL."""

from __future__ import annotations

from server.store.base import SessionStore, Snapshot, StoreUnavailableError, TurnRecord
from server.store.memory import MemoryStore
from server.store.sqlite import SqliteStore

__all__ = [
    "MemoryStore",
    "SessionStore",
    "Snapshot",
    "SqliteStore",
    "StoreUnavailableError",
    "TurnRecord",
    "open_store",
]

_ACCEPTED = "memory://, sqlite:///absolute/path.db, sqlite://relative/path.db or a bare file path"


def open_store(url: str, *, max_turns: int = 500) -> SessionStore:
    """Creates the store a URL names; nothing is opened until first use.

    Args:
        url: `memory://` for an in-process store; `sqlite:///abs/path.db`,
            `sqlite://relative/path.db` or a plain filesystem path for a SQLite file.
        max_turns: How many of the newest turns to keep per call.

    Returns:
        The store; call `ping` to check it is usable.

    Raises:
        ValueError: The URL's scheme is not supported or the URL names no database.
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
    raise ValueError(f"unsupported session store URL {url!r}; expected {_ACCEPTED}")
