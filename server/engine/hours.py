"""Business hours: a weekly schedule with holidays and special days, judged at a given moment.

Pure: the moment is passed in (the call's time in the flow's time zone), never read from a clock.
Times are minutes since midnight; a span whose end is not after its start runs past midnight
("22:00-06:00" is open from 22:00 to 06:00 the next morning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_DAY = 24 * 60

OPEN = "open"
CLOSED = "closed"
HOLIDAY = "holiday"


@dataclass(frozen=True, slots=True)
class Span:
    """Open from `start` to `end`, in minutes since midnight; end <= start runs past midnight."""

    start: int
    end: int

    @property
    def overnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a business is open.

    Attributes:
        weekly: Open spans for Monday .. Sunday (7 entries; an empty entry is a closed day).
        holidays: Dates closed all day (e.g. public holidays).
        special: Dates with their own spans instead of their weekday's (make-up working days,
            short days); an empty tuple closes the day without calling it a holiday.
    """

    weekly: tuple[tuple[Span, ...], ...]
    holidays: frozenset[date] = frozenset()
    special: tuple[tuple[date, tuple[Span, ...]], ...] = ()

    def spans_on(self, day: date) -> tuple[Span, ...]:
        """The spans that start on `day` (its special spans, none on a holiday, else weekly)."""
        for special_day, spans in self.special:
            if special_day == day:
                return spans
        if day in self.holidays:
            return ()
        return self.weekly[day.weekday()]


def status(schedule: Schedule, moment: datetime) -> str:
    """OPEN, HOLIDAY or CLOSED at `moment` (a local time: its date and clock time are used).

    The tail of an overnight span belongs to the day it started: a night shift that starts on
    a working day is open in the small hours of a holiday that follows it.
    """
    day = moment.date()
    minute = moment.hour * 60 + moment.minute
    for span in schedule.spans_on(day):
        if span.start <= minute < (span.end if not span.overnight else _DAY):
            return OPEN
    for span in schedule.spans_on(day - timedelta(days=1)):
        if span.overnight and minute < span.end:
            return OPEN
    is_special = any(special_day == day for special_day, _ in schedule.special)
    return HOLIDAY if day in schedule.holidays and not is_special else CLOSED


def parse_span(text: str) -> Span | None:
    """ "09:00-18:00" → Span(540, 1080); "22:00-06:00" runs overnight; "24:00" ends a day."""
    found = _SPAN.match(text)
    if found is None:
        return None
    start_h, start_m, end_h, end_m = (int(group) for group in found.groups())
    if start_h > 23 or end_h > 24 or start_m > 59 or end_m > 59 or (end_h == 24 and end_m):
        return None
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if start == end:
        return None
    return Span(start, end)


def parse_days(text: str) -> tuple[int, ...] | None:
    """ "mon" → (0,); "mon-fri" → (0, 1, 2, 3, 4); "fri-mon" wraps; None if not days."""
    first, dash, last = text.strip().lower().partition("-")
    if first not in WEEKDAYS or (dash and last not in WEEKDAYS):
        return None
    start = WEEKDAYS.index(first)
    end = WEEKDAYS.index(last) if dash else start
    return tuple((start + offset) % 7 for offset in range((end - start) % 7 + 1))
