"""Tests of branch conditions on slot, parameter and call values: pure, text in, bool out.

Values are text. Comparisons (lt, le, gt, ge) compare numbers as numbers; two ISO dates
(2026-03-05) or two clock times (09:30) compare in time order; anything else does not compare and
the test fails, so a missing or malformed value never takes a branch by accident.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

EQUALITY_OPS = ("equals", "not_equals", "one_of")
PRESENCE_OPS = ("present", "absent")
ORDER_OPS = ("lt", "le", "gt", "ge")
OPS = (*EQUALITY_OPS, *PRESENCE_OPS, *ORDER_OPS, "matches")

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CLOCK = re.compile(r"^\d{2}:\d{2}$")


def holds(op: str, value: str | None, operands: tuple[str, ...]) -> bool:
    """Whether `value` (None: never set) passes the test `op` against `operands`.

    Args:
        op: One of OPS.
        value: The slot, parameter or call value being tested.
        operands: The test's values, already rendered (present/absent take none; matches and
            the comparisons take one).
    """
    if op == "present":
        return bool(value)
    if op == "absent":
        return not value
    if op == "not_equals":
        return value not in operands
    if op in ("equals", "one_of"):
        return value in operands
    if value is None or not operands:
        return False
    if op == "matches":
        # Full match, like a collect node's pattern: "1[3-9]\d{9}" must describe the whole value.
        return re.fullmatch(operands[0], value) is not None
    order = _compare(value, operands[0])
    if order is None:
        return False
    return {"lt": order < 0, "le": order <= 0, "gt": order > 0, "ge": order >= 0}[op]


def _compare(left: str, right: str) -> int | None:
    """-1, 0 or 1 when left and right are both numbers, both ISO dates or both clock times."""
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    for shape in (_ISO_DATE, _CLOCK):
        if shape.match(left.strip()) and shape.match(right.strip()):
            x, y = left.strip(), right.strip()
            return (x > y) - (x < y)
    return None


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None
