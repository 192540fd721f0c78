"""Hooks: HTTP calls a turn needs (external understanding, fulfillment), described purely.

The interpreter never does I/O. When a turn reaches a hook it stops and returns a `HookCall`
(what to post, where, and the deadline); the service performs it and runs the turn again from
the same state with the `HookResult`s gathered so far (`interpreter.resume`). The turn is
deterministic, so the re-run reaches the same hooks in the same order and each consumes its
result; nothing about a hook in flight is ever stored.

This module also reads hook answers, strictly: an answer of the wrong shape counts as an error,
so the flow takes its error path rather than running on half-understood data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from common.jsontext import json_text

NLU = "nlu"
FULFILLMENT = "fulfillment"
# A hook answer may not grow the call's state without bound: it is stored on every turn.
MAX_VALUES = 32
MAX_VALUE_CHARS = 512
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class Outcome(Enum):
    """How a hook call ended."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"


@dataclass(frozen=True, slots=True)
class HookCall:
    """One HTTP call a turn needs before it can go on.

    Attributes:
        kind: NLU or FULFILLMENT.
        node: The node that needs it.
        url: Where to POST.
        payload: The JSON body.
        timeout_ms: The whole call's deadline: connecting, sending and reading the answer.
        idempotency_key: The same for every attempt of this hook in this turn, so a service
            can recognise a repeated call (e.g. after a store conflict made the turn run again).
    """

    kind: str
    node: str
    url: str
    payload: dict[str, Any]
    timeout_ms: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class HookResult:
    """What came of a hook call: the parsed JSON object on OK, else why it failed."""

    outcome: Outcome
    body: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NluAnswer:
    """An external understanding: an intent (may be ""), slot values and a confidence 0-1."""

    intent: str
    slots: dict[str, str]
    confidence: float


def read_nlu(result: HookResult) -> tuple[NluAnswer | None, str]:
    """(answer, "") for a well-formed NLU answer, else (None, why not).

    Shape: {"intent": "bill", "slots": {"phone": "13800138000"}, "confidence": 0.93}; "slots"
    and "confidence" may be left out (no slots; confidence 1).
    """
    if result.outcome is not Outcome.OK:
        return None, result.detail or result.outcome.value
    body = result.body
    intent = body.get("intent", "")
    if not isinstance(intent, str):
        return None, "'intent' is not text"
    confidence = body.get("confidence", 1.0)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        return None, "'confidence' is not a number"
    if not 0 <= confidence <= 1:
        return None, f"'confidence' {confidence} is not between 0 and 1"
    slots, problem = _values(body.get("slots", {}), "slots")
    if slots is None:
        return None, problem
    return NluAnswer(intent, slots, float(confidence)), ""


@dataclass(frozen=True, slots=True)
class FulfillmentAnswer:
    """Slot and call-parameter values a fulfillment service returned."""

    slots: dict[str, str]
    params: dict[str, str]


def read_fulfillment(result: HookResult) -> tuple[FulfillmentAnswer | None, str]:
    """(answer, "") for a well-formed fulfillment answer, else (None, why not).

    Shape: {"slots": {"balance": "42.50"}, "params": {"vip": "1"}}; both optional, so `{}` is a
    success that changes nothing.
    """
    if result.outcome is not Outcome.OK:
        return None, result.detail or result.outcome.value
    slots, problem = _values(result.body.get("slots", {}), "slots")
    if slots is None:
        return None, problem
    params, problem = _values(result.body.get("params", {}), "params")
    if params is None:
        return None, problem
    return FulfillmentAnswer(slots, params), ""


def _values(raw: object, where: str) -> tuple[dict[str, str] | None, str]:
    if not isinstance(raw, Mapping):
        return None, f"'{where}' is not an object"
    if len(raw) > MAX_VALUES:
        return None, f"'{where}' has {len(raw)} values, at most {MAX_VALUES} allowed"
    values: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            return None, f"'{where}' name {name!r} is not a slot name (lowercase, digits, '_')"
        text = json_text(value)
        if len(text) > MAX_VALUE_CHARS:
            return None, f"'{where}.{name}' is longer than {MAX_VALUE_CHARS} characters"
        values[name] = text
    return values, ""
