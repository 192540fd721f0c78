"""When the embedded stores forget a call, and the task that makes them.

Redis expires keys by itself (EXPIRE in the write script); the memory and SQLite stores get the
same rule from here: every successful write sets the call's expiry to `idle_ttl_s` from now, or
`ended_ttl_s` when the write ended the dialogue. An expired call reads as unknown at once; a
`Sweeper` removes expired calls on a schedule so that what the store holds stays bounded.

The idle expiry is rounded up to a step of min(60 s, idle_ttl_s / 100): a call lives at least
`idle_ttl_s` after its last write and at most one step longer (at most 1% more than its TTL, a
minute on the default day). The point is that a call's turns within one step store the same
expiry, so the SQLite store can leave the expiry, and its index, untouched on most turns (see
`server.store.sqlite`). The ending write is exact: it happens once per call, so rounding it
would save nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.store.base import StoreUnavailableError

_log = logging.getLogger("dialogue.store")

DEFAULT_IDLE_TTL_S = 86400
DEFAULT_ENDED_TTL_S = 3600
# A sweep at least this often (more often when a TTL is shorter, so a short TTL is honoured
# with at most one TTL of slack).
_SWEEP_CEILING_S = 60.0
# The idle expiry's step (see the module docstring): a hundredth of the TTL, so that a short TTL
# (tests use 1 s) keeps its meaning, capped so that the default day's slack is a minute.
_STEP_CEILING_S = 60.0
_STEP_FRACTION = 100


@dataclass(frozen=True, slots=True)
class Expiry:
    """How long a store keeps a call after its last write.

    Attributes:
        idle_ttl_s: Seconds a call lives after a write that did not end it.
        ended_ttl_s: Seconds it lives after the write that ended its dialogue.
    """

    idle_ttl_s: int = DEFAULT_IDLE_TTL_S
    ended_ttl_s: int = DEFAULT_ENDED_TTL_S

    def __post_init__(self) -> None:
        if self.idle_ttl_s < 1 or self.ended_ttl_s < 1:
            raise ValueError(
                "idle_ttl_s and ended_ttl_s must be at least 1, "
                f"got {self.idle_ttl_s} and {self.ended_ttl_s}"
            )

    def expires_at(self, now: float, *, ended: bool) -> float:
        """When a call written at `now` expires: the idle expiry rounded up to `step_s`."""
        if ended:
            return now + self.ended_ttl_s
        exact = now + self.idle_ttl_s
        step = self.step_s
        # max(): the division's rounding must never make the call expire before its TTL.
        return max(exact, math.ceil(exact / step) * step)

    @property
    def step_s(self) -> float:
        """The step the idle expiry is rounded up to: how much longer a call may live."""
        return min(_STEP_CEILING_S, self.idle_ttl_s / _STEP_FRACTION)

    @property
    def sweep_interval_s(self) -> float:
        """How often expired calls are removed."""
        return min(_SWEEP_CEILING_S, float(self.idle_ttl_s), float(self.ended_ttl_s))


class Sweeper:
    """Runs `sweep` every `interval_s` on the event loop of the store's first write, until
    `stop`. A failing sweep is logged and tried again next time: expiry must never take the
    store down (reads already treat expired calls as unknown)."""

    def __init__(self, sweep: Callable[[], Awaitable[int]], interval_s: float) -> None:
        self._sweep = sweep
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def ensure_started(self) -> None:
        """Starts the schedule if it is not running; cheap enough to call on every write."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="store-sweeper")

    async def stop(self) -> None:
        """Cancels the schedule and waits for it; safe to call when it never started."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                removed = await self._sweep()
            except StoreUnavailableError as exc:
                _log.warning("expired calls not removed this time: %s", exc)
                continue
            if removed:
                _log.info("removed %d expired calls", removed)
