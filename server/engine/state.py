"""Per-call dialogue state and its compact JSON encoding for the session stores."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

NO_INPUT = "no_input"
NO_MATCH = "no_match"
FAILURES = "failures"


@dataclass(frozen=True, slots=True)
class CallState:
    """Everything the engine remembers about one call between two turns.

    Attributes:
        call_id: The platform's call id.
        flow_id: The flow the call runs ("" for a call that ended before any flow was chosen).
        flow_version: The flow version the call is pinned to.
        node: The node the call waits at.
        entry: The node the last turn's chain of nodes started at; "repeat" replays from here.
        slots: Values collected so far.
        params: Call-associated parameters (from the platform and set by the flow).
        passthrough: The platform's opaque call-associated data, kept to hand on at transfer.
        counters: No-input and no-match counts at the current node, and the call-wide failures.
        turn: Turns applied so far.
        over: True once the dialogue has ended.
        caller: The calling party, for templates.
        callee: The called party, for templates.
        barge_in: The barge-in policy of the prompts last sent, as "MODE:MIN_SPEECH_MS", so a
            barge-in event is judged by what is actually playing.
    """

    call_id: str
    flow_id: str = ""
    flow_version: str = ""
    node: str = ""
    entry: str = ""
    slots: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    passthrough: str = ""
    counters: dict[str, int] = field(default_factory=dict)
    turn: int = 0
    over: bool = False
    caller: str = ""
    callee: str = ""
    barge_in: str = ""

    def count(self, name: str) -> int:
        """Returns a counter's value (0 when never counted)."""
        return self.counters.get(name, 0)

    def with_counter(self, name: str, value: int) -> CallState:
        """Returns a copy with one counter set."""
        return replace(self, counters={**self.counters, name: value})


# Short keys keep the stored state small: it is written on every turn of every call.
_KEYS = {
    "call_id": "c",
    "flow_id": "f",
    "flow_version": "v",
    "node": "n",
    "entry": "e",
    "slots": "s",
    "params": "p",
    "passthrough": "t",
    "counters": "k",
    "turn": "u",
    "over": "o",
    "caller": "a",
    "callee": "b",
    "barge_in": "g",
}
_FIELDS = {short: name for name, short in _KEYS.items()}


def encode(state: CallState) -> bytes:
    """Serialises state to compact JSON, leaving out empty values."""
    data = {
        short: getattr(state, name)
        for name, short in _KEYS.items()
        if getattr(state, name) not in ("", {}, 0, False)
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def decode(blob: bytes) -> CallState:
    """Parses what `encode` wrote."""
    data = json.loads(blob)
    return CallState(**{_FIELDS[short]: value for short, value in data.items()})
