"""Unit tests of dates and clock times as callers say them, relative to a fixed "today"."""

from __future__ import annotations

from datetime import date, time

import pytest

from server.engine.dates import parse_date, parse_time

WEDNESDAY = date(2026, 3, 4)


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Relative days.
        ("今天", date(2026, 3, 4)),
        ("明天", date(2026, 3, 5)),
        ("后天", date(2026, 3, 6)),
        ("大后天", date(2026, 3, 7)),
        ("昨天", date(2026, 3, 3)),
        ("3天后", date(2026, 3, 7)),
        ("过两天", date(2026, 3, 6)),
        ("我想约明天下午三点", date(2026, 3, 5)),
        # Weekdays: bare is the next one (today counts), 这/本 this week, 下 next, 上 last.
        ("周五", date(2026, 3, 6)),
        ("星期三", date(2026, 3, 4)),
        ("礼拜天", date(2026, 3, 8)),
        ("这周一", date(2026, 3, 2)),
        ("本周日", date(2026, 3, 8)),
        ("下周一", date(2026, 3, 9)),
        ("下个星期五", date(2026, 3, 13)),
        ("下下周一", date(2026, 3, 16)),
        ("上周五", date(2026, 2, 27)),
        # Absolute: without a year the next such date; a day alone this month or next.
        ("2026年3月5日", date(2026, 3, 5)),
        ("二零二六年十二月二十五日", date(2026, 12, 25)),
        ("三月八号", date(2026, 3, 8)),
        ("一月一号", date(2027, 1, 1)),
        ("5号", date(2026, 3, 5)),
        ("3号", date(2026, 4, 3)),
        ("下个月5号", date(2026, 4, 5)),
        ("2026-03-05", date(2026, 3, 5)),
    ],
)
def test_chinese_dates(said: str, expected: date) -> None:
    assert parse_date(said, WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("today", date(2026, 3, 4)),
        ("Tomorrow please", date(2026, 3, 5)),
        ("the day after tomorrow", date(2026, 3, 6)),
        ("yesterday", date(2026, 3, 3)),
        ("in 3 days", date(2026, 3, 7)),
        ("in twenty one days", date(2026, 3, 25)),
        ("two days from now", date(2026, 3, 6)),
        ("friday", date(2026, 3, 6)),
        ("on Wed", date(2026, 3, 4)),
        ("this monday", date(2026, 3, 2)),
        ("next monday", date(2026, 3, 9)),
        ("next week friday", date(2026, 3, 13)),
        ("last friday", date(2026, 2, 27)),
        ("March 5th", date(2026, 3, 5)),
        ("march the fifth, 2027", date(2027, 3, 5)),
        ("the 21st of March", date(2026, 3, 21)),
        ("5 March 2026", date(2026, 3, 5)),
        ("December twenty first", date(2026, 12, 21)),
        ("January 2", date(2027, 1, 2)),
        ("the fifth", date(2026, 3, 5)),
        ("on the 3rd", date(2026, 4, 3)),
        ("2026-03-05", date(2026, 3, 5)),
        ("feb 29", date(2028, 2, 29)),
    ],
)
def test_english_dates(said: str, expected: date) -> None:
    assert parse_date(said, WEDNESDAY) == expected


def test_the_31st_skips_months_without_one() -> None:
    assert parse_date("31号", date(2026, 4, 15)) == date(2026, 5, 31)
    assert parse_date("the 31st", date(2026, 1, 31)) == date(2026, 1, 31)


@pytest.mark.parametrize("said", ["", "随便", "hello", "2月30日", "feb 30", "13月1日", "the 45th"])
def test_what_is_no_date_is_none(said: str) -> None:
    assert parse_date(said, WEDNESDAY) is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("三点", time(3, 0)),
        ("下午三点", time(15, 0)),
        ("三点半", time(3, 30)),
        ("下午三点一刻", time(15, 15)),
        ("晚上八点三刻", time(20, 45)),
        ("十点十五分", time(10, 15)),
        ("九点零五", time(9, 5)),
        ("上午十点", time(10, 0)),
        ("中午十二点", time(12, 0)),
        ("中午一点", time(13, 0)),
        ("凌晨两点", time(2, 0)),
        ("凌晨十二点", time(0, 0)),
        ("晚上十二点", time(0, 0)),
        ("傍晚六点", time(18, 0)),
        ("15:30", time(15, 30)),
        ("下午3:30", time(15, 30)),
        ("明天下午两点", time(14, 0)),
    ],
)
def test_chinese_times(said: str, expected: time) -> None:
    assert parse_time(said) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("3 pm", time(15, 0)),
        ("3pm", time(15, 0)),
        ("3:30 p.m.", time(15, 30)),
        ("12 am", time(0, 0)),
        ("12 pm", time(12, 0)),
        ("three thirty pm", time(15, 30)),
        ("seven oh five", time(7, 5)),
        ("twelve forty five", time(12, 45)),
        ("half past three", time(3, 30)),
        ("quarter past seven in the evening", time(19, 15)),
        ("quarter to four", time(3, 45)),
        ("ten to nine in the morning", time(8, 50)),
        ("7 o'clock", time(7, 0)),
        ("ten in the morning", time(10, 0)),
        ("eleven at night", time(23, 0)),
        ("twelve at night", time(0, 0)),
        ("at 3", time(3, 0)),
        ("three", time(3, 0)),
        ("noon", time(12, 0)),
        ("midnight", time(0, 0)),
        ("15:30", time(15, 30)),
    ],
)
def test_english_times(said: str, expected: time) -> None:
    assert parse_time(said) == expected


@pytest.mark.parametrize("said", ["", "随便", "whenever", "25:00", "13 pm", "三十点", "2026-03-05"])
def test_what_is_no_time_is_none(said: str) -> None:
    assert parse_time(said) is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Regression (issue 17): am/pm said after the minutes used to drop them.
        ("quarter to four pm", time(15, 45)),
        ("half past 3 pm", time(15, 30)),
        ("ten past nine pm", time(21, 10)),
        ("quarter past eleven a.m.", time(11, 15)),
        ("quarter to twelve am", time(23, 45)),
        ("I'll come at half past seven p.m. please", time(19, 30)),
    ],
)
def test_english_am_pm_keeps_the_minutes(said: str, expected: time) -> None:
    assert parse_time(said) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Regression (issue 17): 差 (minutes before the hour) used to be read as on the hour.
        ("差五分三点", time(2, 55)),
        ("三点差五分", time(2, 55)),
        ("差十分钟八点", time(7, 50)),
        ("下午三点差一刻", time(14, 45)),
        ("晚上十二点差五分", time(23, 55)),
        ("我大概差五分三点到", time(2, 55)),
    ],
)
def test_chinese_minutes_before_the_hour(said: str, expected: time) -> None:
    assert parse_time(said) == expected


@pytest.mark.parametrize("said", ["quarter to 13 pm", "13:15 pm", "三点差七十分", "差零分三点"])
def test_impossible_times_with_am_pm_or_before_the_hour_are_none(said: str) -> None:
    assert parse_time(said) is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Regression (issue 17 QA): "过一刻" was read as one minute past (03:01).
        ("三点过一刻", time(3, 15)),
        ("下午三点过一刻", time(15, 15)),
        ("下午三点过五分", time(15, 5)),
        # Regression: 今晚/明晚/昨晚 are the evening, like 晚上 (今晚八点 was 08:00).
        ("今晚八点", time(20, 0)),
        ("明晚七点半", time(19, 30)),
        ("昨晚十一点", time(23, 0)),
        ("今晚十二点", time(0, 0)),
    ],
)
def test_chinese_past_the_hour_and_tonight(said: str, expected: time) -> None:
    assert parse_time(said) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Regression (issue 17 QA): a dot between hour and minutes with am/pm, as British
        # English and ASR write it ("4.30pm" was no time); a decimal is still no time.
        ("4.30pm", time(16, 30)),
        ("at 4.30 p.m. please", time(16, 30)),
        ("9.05 am", time(9, 5)),
    ],
)
def test_english_dotted_times_with_am_pm(said: str, expected: time) -> None:
    assert parse_time(said) == expected


def test_a_decimal_before_pm_is_no_time() -> None:
    assert parse_time("3.5 pm") is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Regression (issue 17 QA): "下周星期三" was this week's Wednesday (today, 4 March).
        ("下周星期三", date(2026, 3, 11)),
        ("下个礼拜星期五", date(2026, 3, 13)),
        ("这周星期五", date(2026, 3, 6)),
        ("那个，下周周三吧", date(2026, 3, 11)),
    ],
)
def test_week_then_weekday_said_twice(said: str, expected: date) -> None:
    assert parse_date(said, date(2026, 3, 4)) == expected


@pytest.mark.parametrize(
    "said",
    [
        # Regression (issue 17 QA): each of these was taken as a date the caller did not say.
        "明天不行",  # was tomorrow
        "I can't do tomorrow",
        "周三还是周四",  # was today (Wednesday)
        "下周三或者周四",
        "friday or saturday",
        "明天到后天",
        "明后天",
    ],
)
def test_a_refused_date_or_a_choice_of_two_is_none(said: str) -> None:
    assert parse_date(said, WEDNESDAY) is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("明天不行，后天吧", date(2026, 3, 6)),
        ("不是明天，是后天", date(2026, 3, 6)),
        ("no, friday", date(2026, 3, 6)),
        ("还是明天吧", date(2026, 3, 5)),
        ("March 5th, 2027", date(2027, 3, 5)),
    ],
)
def test_the_date_left_when_another_is_refused(said: str, expected: date) -> None:
    assert parse_date(said, WEDNESDAY) == expected


@pytest.mark.parametrize(
    "said",
    [
        # Regression (issue 17 QA): bounds, estimates and ranges were read as the hour said.
        "三点多",
        "下午三点多",
        "三点以后",
        "15:30以后",
        "下午三点前",
        "三点到四点",
        "three or four pm",
        "after 3 pm",
        "before noon",
        "3 to 4 pm",  # was 15:57
        "三点不行",
        "明天下午三点，不对，四点",  # two clauses, two times: was 15:00
        "三点，三点半",
    ],
)
def test_a_bound_an_estimate_or_a_range_is_no_time(said: str) -> None:
    assert parse_time(said) is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("三点不行，四点吧", time(4, 0)),
        ("ten minutes before nine", time(8, 50)),
        ("quarter before nine", time(8, 45)),
        ("three minutes to four", time(3, 57)),
        ("下午三点到", time(15, 0)),
        ("差十分下午三点", time(14, 50)),  # was 15:00
    ],
)
def test_times_that_only_look_like_bounds(said: str, expected: time) -> None:
    assert parse_time(said) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Regression (issue 17 QA): "a week from today" was today; weeks on were no date.
        ("a week from today", date(2026, 3, 11)),
        ("in a week", date(2026, 3, 11)),
        ("in two weeks", date(2026, 3, 18)),
        ("two weeks from now", date(2026, 3, 18)),
        ("一周后", date(2026, 3, 11)),
        ("一个星期后", date(2026, 3, 11)),
        ("两周以后", date(2026, 3, 18)),
    ],
)
def test_weeks_on(said: str, expected: date) -> None:
    assert parse_date(said, WEDNESDAY) == expected


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Regression (issue 17 QA): a bare hour with words around it was no time.
        ("at 9 in the morning please", time(9, 0)),
        ("um, at 9 please", time(9, 0)),
        ("how about nine in the morning", time(9, 0)),
        ("so, at 7 in the evening, thanks", time(19, 0)),
        ("sometime around 3 pm", time(15, 0)),
    ],
)
def test_a_bare_hour_with_polite_words_around_it(said: str, expected: time) -> None:
    assert parse_time(said) == expected


def test_a_number_in_a_sentence_is_no_hour() -> None:
    assert parse_time("I have 2 kids") is None
