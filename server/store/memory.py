"""An in-process session store for tests, with the same semantics as the SQLite store."""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from server.store.base import Snapshot, StoreUnavailableError, TurnRecord


@dataclass(slots=True)
class _Call:
    version: int
    state: bytes
    turns: list[TurnRecord] = field(default_factory=list)  # ordered by turn number


class MemoryStore:
    """Keeps calls in dicts; nothing survives the process.

    Calls never expire (expiry is Redis-only for now): they live until the store is closed.

    No method awaits anything, so on one event loop every call is atomic and the
    compare-and-set in `write` needs no lock.
    """

    def __init__(self, *, max_turns: int = 500) -> None:
        """Creates an empty store.

        Args:
            max_turns: How many of the newest turns to keep per call.

        Raises:
            ValueError: max_turns is less than 1.
        """
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        self._max_turns = max_turns
        self._calls: dict[str, _Call] = {}
        self._closed = False

    async def read(self, call_id: str, request_id: str) -> Snapshot:
        """See `SessionStore.read`."""
        call = self._call(call_id)
        if call is None:
            return Snapshot(state=None, version=0, replay=None)
        replay = next((t for t in call.turns if t.request_id == request_id), None)
        return Snapshot(state=call.state, version=call.version, replay=replay)

    async def write(
        self,
        call_id: str,
        expected_version: int,
        state: bytes,
        turn: TurnRecord,
        *,
        ended: bool = False,
    ) -> bool:
        """See `SessionStore.write`; `ended` is ignored, as this store never expires calls.

        Raises:
            ValueError: A turn with the same number is already kept for the call (a caller bug).
        """
        call = self._call(call_id)
        version = 0 if call is None else call.version
        if version != expected_version:
            return False
        if call is None:
            call = _Call(version=0, state=state)
            self._calls[call_id] = call
        elif any(t.request_id == turn.request_id for t in call.turns):
            return False
        elif any(t.number == turn.number for t in call.turns):
            raise ValueError(f"turn {turn.number} is already recorded for call {call_id!r}")
        call.version = version + 1
        call.state = state
        bisect.insort(call.turns, turn, key=lambda t: t.number)
        del call.turns[: -self._max_turns]
        return True

    async def turns(self, call_id: str) -> list[TurnRecord]:
        """See `SessionStore.turns`."""
        call = self._call(call_id)
        return [] if call is None else list(call.turns)

    async def call_ids(self) -> AsyncIterator[str]:
        """See `SessionStore.call_ids`."""
        self._call("")
        for call_id in list(self._calls):
            yield call_id

    async def ping(self) -> None:
        """See `SessionStore.ping`."""
        self._call("")

    async def close(self) -> None:
        """See `SessionStore.close`; safe to call twice."""
        self._closed = True
        self._calls.clear()

    def _call(self, call_id: str) -> _Call | None:
        if self._closed:
            raise StoreUnavailableError("the memory store is closed")
        return self._calls.get(call_id)
