"""Per-call dialogue state and its compact JSON encoding for the session stores.

States are persisted (SQLite, Redis) and may outlive a deploy, so `decode` also reads what
earlier versions wrote: there the deferred/confirming flags were counters and the barge-in
policy a "MODE_NAME:MIN_SPEECH_MS" string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dialogue.v1 import dialogue_pb2 as pb

NO_INPUT = "no_input"
NO_MATCH = "no_match"
FAILURES = "failures"
# Names of the queue figures (`{queue.NAME}` in templates), as QueueStatus calls them.
QUEUE_FIGURES = ("position", "agents_online", "agents_idle", "estimated_wait_ms")


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
        counters: No-input and no-match counts at the current node (NO_INPUT, NO_MATCH), and
            the call-wide failures (FAILURES); nothing else.
        turn: Turns applied so far.
        over: True once the dialogue has ended.
        caller: The calling party, for templates.
        callee: The called party, for templates.
        barge_in_mode: The barge-in mode (pb.BargeInMode) of the prompts last sent, so a
            barge-in event is judged by what is actually playing; 0 before any were sent.
        min_speech_ms: The speech those prompts need before it interrupts them.
        deferred: A node that cannot carry prompts (wait, AI gather, queue status, assistant)
            waits for the prompts spoken on the way to it to finish playing.
        confirming: A collect node with `confirm` waits for the caller to confirm its value.
        capabilities: What the platform can do beyond the basics (pb.Capability values), as the
            latest request said.
        queue: The queue figures the platform last reported (QUEUE_FIGURES), only those known.
        assistant: How the platform's voice assistant last ended: reason, duration_ms and
            transcript (one "role: content" line per message).
        transfer_failure: Why the last failed transfer failed, as flows name it (busy,
            no_answer, rejected, unreachable, unknown); "" until one failed.
        language: The language the call speaks now, one the flow declares (`languages:`);
            "" for the flow's default. States written before it existed decode to "".
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
    barge_in_mode: int = 0
    min_speech_ms: int = 0
    deferred: bool = False
    confirming: bool = False
    capabilities: tuple[int, ...] = ()
    queue: dict[str, int] = field(default_factory=dict)
    assistant: dict[str, str] = field(default_factory=dict)
    transfer_failure: str = ""
    language: str = ""

    def count(self, name: str) -> int:
        """Returns a counter's value (0 when never counted)."""
        return self.counters.get(name, 0)


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
    "deferred": "d",
    "confirming": "w",
    "capabilities": "x",
    "queue": "q",
    "assistant": "r",
    "transfer_failure": "j",
    "language": "l",
}
_FIELDS = {short: name for name, short in _KEYS.items()}
# The barge-in policy is one key, [mode, min_speech_ms]: both or neither are meaningful.
_BARGE_IN = "g"
# Earlier versions kept these two flags as counters.
_FLAG_COUNTERS = ("deferred", "confirming")


# Made once: `json.dumps` with options builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def encode(state: CallState) -> bytes:
    """Serialises state to compact JSON, leaving out empty values ("", 0, False, {}, ())."""
    data: dict[str, Any] = {}
    for name, short in _KEYS.items():
        value = getattr(state, name)
        if value:
            data[short] = value
    if state.barge_in_mode:
        data[_BARGE_IN] = [state.barge_in_mode, state.min_speech_ms]
    return _ENCODER.encode(data).encode()


def decode(blob: bytes) -> CallState:
    """Parses what `encode` wrote, now or in earlier versions."""
    data = json.loads(blob)
    barge_in = data.pop(_BARGE_IN, None)
    values: dict[str, Any] = {_FIELDS[short]: value for short, value in data.items()}
    if "capabilities" in values:
        values["capabilities"] = tuple(values["capabilities"])
    counters = dict(values.get("counters", {}))
    for flag in _FLAG_COUNTERS:
        if counters.pop(flag, 0):
            values[flag] = True
    values["counters"] = counters
    if isinstance(barge_in, list):
        values["barge_in_mode"], values["min_speech_ms"] = barge_in
    elif isinstance(barge_in, str) and barge_in:
        mode, _, min_speech = barge_in.partition(":")
        values["barge_in_mode"] = pb.BargeInMode.Value(mode)
        values["min_speech_ms"] = int(min_speech or 0)
    return CallState(**values)
