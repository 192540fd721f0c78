"""An in-process session store for tests, with the same semantics as the SQLite store."""

from __future__ import annotations

import bisect
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from server.store.base import Snapshot, StoreUnavailableError, TurnRecord
from server.store.expiry import Expiry, Sweeper
from server.store.records import decode_turn, encode_turn, turn_key


@dataclass(slots=True)
class _Call:
    version: int
    state: bytes
    expires_at: float
    # Each turn as one byte string (server.store.records), ordered by turn number: a TurnRecord
    # and its four objects would cost about 130 bytes more per turn.
    turns: list[bytes] = field(default_factory=list)

    def find(self, request_id: str) -> bytes | None:
        wanted = request_id.encode()
        return next((t for t in self.turns if turn_key(t)[1] == wanted), None)


class MemoryStore:
    """Keeps calls in dicts; nothing survives the process.

    Calls expire like in the other stores (see `server.store.expiry`): an expired call reads as
    unknown at once and a sweep removes it from memory on a schedule.

    No method awaits anything, so on one event loop every call is atomic and the
    compare-and-set in `write` needs no lock.
    """

    starts_inline = True  # see SessionStore: nothing here ever waits

    def __init__(
        self,
        *,
        max_turns: int = 500,
        expiry: Expiry | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Creates an empty store.

        Args:
            max_turns: How many of the newest turns to keep per call.
            expiry: How long calls are kept after their last write (the defaults when None).
            clock: The time in seconds (tests pass their own).

        Raises:
            ValueError: max_turns is less than 1.
        """
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns}")
        self._max_turns = max_turns
        self._expiry = expiry or Expiry()
        self._clock = clock
        self._calls: dict[str, _Call] = {}
        self._sweeper = Sweeper(self.sweep, self._expiry.sweep_interval_s)
        self._closed = False

    async def read(self, call_id: str, request_id: str) -> Snapshot:
        """See `SessionStore.read`."""
        call = self._call(call_id)
        if call is None:
            return Snapshot(state=None, version=0, replay=None)
        found = call.find(request_id)
        replay = None if found is None else decode_turn(found)
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
        """See `SessionStore.write`; `ended` shortens the call's expiry to `ended_ttl_s`.

        Raises:
            ValueError: A turn with the same number is already kept for the call (a caller bug).
        """
        self._sweeper.ensure_started()
        call = self._call(call_id)
        version = 0 if call is None else call.version
        if version != expected_version:
            return False
        now = self._clock()
        if call is None:
            call = _Call(version=0, state=state, expires_at=now)
            self._calls[call_id] = call
        elif call.find(turn.request_id) is not None:
            return False
        elif any(turn_key(t)[0] == turn.number for t in call.turns):
            raise ValueError(f"turn {turn.number} is already recorded for call {call_id!r}")
        call.version = version + 1
        call.state = state
        call.expires_at = self._expiry.expires_at(now, ended=ended)
        bisect.insort(call.turns, encode_turn(turn), key=lambda t: turn_key(t)[0])
        del call.turns[: -self._max_turns]
        return True

    async def turns(self, call_id: str) -> list[TurnRecord]:
        """See `SessionStore.turns`."""
        call = self._call(call_id)
        if call is None:
            return []
        return [turn for turn in map(decode_turn, call.turns) if turn is not None]

    async def call_ids(self) -> AsyncIterator[str]:
        """See `SessionStore.call_ids`."""
        self._call("")
        now = self._clock()
        for call_id, call in list(self._calls.items()):
            if call.expires_at > now:
                yield call_id

    async def sweep(self) -> int:
        """Removes every expired call now; returns how many (the schedule calls this too)."""
        self._call("")
        now = self._clock()
        expired = [call_id for call_id, call in self._calls.items() if call.expires_at <= now]
        for call_id in expired:
            del self._calls[call_id]
        return len(expired)

    async def ping(self) -> None:
        """See `SessionStore.ping`."""
        self._call("")

    async def close(self) -> None:
        """See `SessionStore.close`; safe to call twice."""
        self._closed = True
        self._calls.clear()
        await self._sweeper.stop()

    def _call(self, call_id: str) -> _Call | None:
        if self._closed:
            raise StoreUnavailableError("the memory store is closed")
        call = self._calls.get(call_id)
        if call is not None and call.expires_at <= self._clock():
            # Expired but not swept yet: gone at once, as Redis forgets an expired key.
            del self._calls[call_id]
            return None
        return call
