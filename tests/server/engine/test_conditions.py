"""Unit tests of branch condition operators on text values."""

from __future__ import annotations

import pytest

from server.engine.conditions import holds


@pytest.mark.parametrize(
    ("op", "value", "operands", "expected"),
    [
        ("equals", "gold", ("gold",), True),
        ("equals", None, ("gold",), False),
        ("not_equals", None, ("gold",), True),
        ("one_of", "b", ("a", "b"), True),
        ("present", "", (), False),
        ("present", "x", (), True),
        ("absent", None, (), True),
        # Numbers compare as numbers, not as text.
        ("lt", "9", ("10",), True),
        ("lt", "10", ("9",), False),
        ("le", "10", ("10.0",), True),
        ("gt", "100.5", ("99",), True),
        ("ge", "-3", ("-3",), True),
        ("gt", "1e3", ("999",), True),
        # ISO dates and clock times compare in time order.
        ("lt", "2026-03-04", ("2026-03-05",), True),
        ("ge", "09:30", ("09:00",), True),
        # What does not compare never holds, so a missing value never takes the branch.
        ("lt", None, ("10",), False),
        ("lt", "", ("10",), False),
        ("gt", "abc", ("10",), False),
        ("gt", "2026-03-04", ("10",), False),
        ("lt", "nan", ("10",), False),
        # Regular expressions match the whole value.
        ("matches", "13800138000", (r"1[3-9]\d{9}",), True),
        ("matches", "138001380001", (r"1[3-9]\d{9}",), False),
        ("matches", None, (r".*",), False),
    ],
)
def test_holds(op: str, value: str | None, operands: tuple[str, ...], expected: bool) -> None:
    assert holds(op, value, operands) is expected
