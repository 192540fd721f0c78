"""Telling a true retry from a new turn when a `Dialogue` request carries no signal of its own.

A signed RPC request carries `SignatureNonce` and `Timestamp`, and those tell a resend (same
nonce) from the next turn. An unsigned request may carry neither, and then three silent turns
of one call are byte-identical. The signal chosen here: a request is a retry of an earlier one
only when it is byte-identical (every parameter, same values) AND arrives within the retry
window (`ALIYUN_CCC_RETRY_WINDOW_MS`, default 3 s) of it. A silent turn takes longer than that
(a broadcast, then the IVR's wait for speech), a resend after a lost answer does not.

Memory per gateway process, bounded in entries and in time; a retry that reaches another
replica is a new turn (documented in docs/gateways/aliyun-ccc.md).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

_MAX_REMEMBERED = 10_000


@dataclass(slots=True)
class RetryWindow:
    """Hands out occurrences: the same one for a byte-identical request within the window.

    Attributes:
        window_s: How long after a request an identical one counts as its retry; 0 makes
            every unsigned request its own turn.
        clock: Monotonic seconds (tests inject one).
    """

    window_s: float
    clock: Callable[[], float]
    _seen: OrderedDict[str, tuple[float, str]] = field(default_factory=OrderedDict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def occurrence(self, params: Mapping[str, str]) -> str:
        """The occurrence of this request: an earlier one's if it is a retry, else a new one."""
        now = self.clock()
        key = hashlib.sha256(
            json.dumps(sorted(params.items()), ensure_ascii=False).encode("utf-8")
        ).hexdigest()
        self._forget_before(now - self.window_s)
        earlier = self._seen.get(key)
        if earlier is not None and self.window_s > 0:
            return earlier[1]
        occurrence = f"turn-{now:.6f}-{next(self._counter)}"
        self._seen[key] = (now, occurrence)
        self._seen.move_to_end(key)
        while len(self._seen) > _MAX_REMEMBERED:
            self._seen.popitem(last=False)
        return occurrence

    def _forget_before(self, oldest: float) -> None:
        while self._seen:
            key, (seen_at, _) = next(iter(self._seen.items()))
            if seen_at >= oldest:
                return
            del self._seen[key]
