"""The session-store interface: per-call state plus the turn log, with compare-and-set writes.

A store knows nothing about dialogue: it keeps, per call id, an opaque state blob with a
version number, and the log of turns applied to the call. The service serialises the events of
one call inside one process; the version check in `write` makes concurrent writers (other
replicas sharing the store) safe, and the unique request id per call makes retries exactly-once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


class StoreUnavailableError(Exception):
    """The store cannot be reached or answered an error; nothing was written."""


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One event applied to a call and the decision it got.

    What tells a retry from a reused request id is a digest of the event, which the service
    computes from `request` when it needs it (only for a retry): a stored digest would cost
    every turn of every call its bytes.

    Attributes:
        number: The turn number, counting from 1 for the call's first event.
        request_id: The request id of the event (unique per call).
        request: The serialised DecideNextActionRequest.
        response: The serialised DecideNextActionResponse, returned verbatim on a retry.
    """

    number: int
    request_id: str
    request: bytes
    response: bytes


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What `SessionStore.read` found for a call.

    Attributes:
        state: The serialised call state, or None when the store has never seen the call.
        version: The state's version: 0 when unknown, then +1 on every successful write.
        replay: The earlier turn with the asked request id, if the event was applied before.
    """

    state: bytes | None
    version: int
    replay: TurnRecord | None


class SessionStore(Protocol):
    """Durable per-call state and turn log.

    Attributes:
        starts_inline: The store's operations usually finish without waiting (no network), and
            none binds anything to the task it starts in (`asyncio.timeout` does): the service
            may then run an operation's first step in the caller's own task and only make a
            task of it when it does wait (see `DialogueService._store`).
    """

    starts_inline: bool

    async def read(self, call_id: str, request_id: str) -> Snapshot:
        """Returns the call's state and version, and the turn already applied for request_id."""
        ...

    async def write(
        self,
        call_id: str,
        expected_version: int,
        state: bytes,
        turn: TurnRecord,
        *,
        ended: bool = False,
    ) -> bool:
        """Atomically stores state as version expected_version + 1 and appends turn.

        `ended` says the dialogue is over after this write: a store that expires calls keeps
        an ended call for a shorter while (only the Redis store expires calls for now).

        Returns False, writing nothing, when the stored version is not expected_version or a
        turn with the same request id was already appended (another writer won).
        """
        ...

    async def turns(self, call_id: str) -> list[TurnRecord]:
        """Returns the call's turns, oldest first (the newest `max_turns` of them)."""
        ...

    def call_ids(self) -> AsyncIterator[str]:
        """Every call the store holds, in no particular order (for export and analytics)."""
        ...

    async def ping(self) -> None:
        """Returns when the store is usable; raises StoreUnavailableError otherwise."""
        ...

    async def close(self) -> None:
        """Releases connections and threads; the store is unusable afterwards."""
        ...
