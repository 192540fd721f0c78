"""Unit tests of business hours: weekly spans, overnight spans, holidays and special days,
judged at fixed local moments."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from server.engine.hours import (
    CLOSED,
    HOLIDAY,
    OPEN,
    Schedule,
    Span,
    parse_days,
    parse_span,
    status,
)

NINE_TO_SIX = (Span(9 * 60, 18 * 60),)
OFFICE = Schedule(
    weekly=(NINE_TO_SIX,) * 5 + ((Span(10 * 60, 16 * 60),), ()),
    holidays=frozenset({date(2026, 10, 1), date(2026, 10, 2)}),
    # A make-up working Sunday, and a short day.
    special=((date(2026, 9, 27), NINE_TO_SIX), (date(2026, 12, 31), (Span(9 * 60, 12 * 60),))),
)
NIGHT_DESK = Schedule(weekly=((Span(22 * 60, 6 * 60),),) * 5 + ((), ()))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 4, 9, 0), OPEN),  # Wednesday, opening minute
        (datetime(2026, 3, 4, 17, 59), OPEN),
        (datetime(2026, 3, 4, 18, 0), CLOSED),  # the end is exclusive
        (datetime(2026, 3, 4, 8, 59), CLOSED),
        (datetime(2026, 3, 7, 12, 0), OPEN),  # Saturday 10-16
        (datetime(2026, 3, 7, 16, 30), CLOSED),
        (datetime(2026, 3, 8, 12, 0), CLOSED),  # Sunday: no spans
        (datetime(2026, 10, 1, 12, 0), HOLIDAY),  # a Thursday, but a holiday
        (datetime(2026, 9, 27, 12, 0), OPEN),  # a Sunday made a working day
        (datetime(2026, 12, 31, 13, 0), CLOSED),  # a short day
        (datetime(2026, 12, 31, 11, 0), OPEN),
    ],
)
def test_office_hours(moment: datetime, expected: str) -> None:
    assert status(OFFICE, moment) == expected


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 3, 2, 23, 0), OPEN),  # Monday night
        (datetime(2026, 3, 3, 5, 59), OPEN),  # the tail of Monday's shift
        (datetime(2026, 3, 3, 6, 0), CLOSED),
        (datetime(2026, 3, 2, 3, 0), CLOSED),  # Monday early: Sunday had no shift
        (datetime(2026, 3, 7, 3, 0), OPEN),  # Saturday early: the tail of Friday's shift
        (datetime(2026, 3, 7, 23, 0), CLOSED),  # Saturday night: no shift
    ],
)
def test_an_overnight_span_belongs_to_the_day_it_starts(moment: datetime, expected: str) -> None:
    assert status(NIGHT_DESK, moment) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00-18:00", Span(540, 1080)),
        ("9:30 - 12:00", Span(570, 720)),
        ("22:00-06:00", Span(1320, 360)),
        ("00:00-24:00", Span(0, 1440)),
        ("18:00-09", None),
        ("25:00-26:00", None),
        ("09:00-09:00", None),
        ("09:60-10:00", None),
        ("00:00-24:30", None),
        ("nine to five", None),
    ],
)
def test_parse_span(text: str, expected: Span | None) -> None:
    assert parse_span(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mon", (0,)),
        ("Mon-Fri", (0, 1, 2, 3, 4)),
        ("fri-mon", (4, 5, 6, 0)),
        ("sun", (6,)),
        ("monday", None),
        ("mon-", None),
    ],
)
def test_parse_days(text: str, expected: tuple[int, ...] | None) -> None:
    assert parse_days(text) == expected
