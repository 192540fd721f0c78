"""Dates and clock times as callers say them, in Chinese and English: pure, relative to "today".

`parse_date` reads absolute dates ("2026年3月5日", "三月五号", "March 5th", "2026-03-05") and
relative ones ("明天", "后天", "下周一", "3天后", "tomorrow", "next monday", "in 3 days"),
relative to the `today` it is given — the call's date in the flow's time zone, never a clock.
`parse_time` reads clock times ("下午三点半", "晚上八点一刻", "15:30", "3:30 pm", "half past three",
"noon").

Conventions (the same for every flow, so callers and authors can rely on them):
- A date without a year is the next such date from today on (today counts); a day of the
  month alone ("5号", "the 5th") is in this month if not past, else in the next.
- A bare weekday ("周五", "friday") is the next such day from today on (today counts);
  "这周五"/"本周五"/"this friday" is that day of the current week (Monday to Sunday), "下周五" /
  "next friday" of the following week, "下下周五" two weeks on, "上周五"/"last friday" of the
  previous week.
- A time without 上午/下午/am/pm is taken as said: "三点" is 03:00, "15:30" is 15:30.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date, time, timedelta
from typing import TypeVar

from server.engine.matching import (
    english_number,
    is_cjk,
    normalize,
    spoken_number,
    unnegated_clauses,
)

T = TypeVar("T")

_NUM = r"[0-9零〇一二两三四五六七八九十]+"

_ZH_FULL = re.compile(
    rf"(?P<y>\d{{4}}|[零〇一二三四五六七八九]{{4}})年(?P<m>{_NUM})月(?P<d>{_NUM})[日号]?"
)
_ISO = re.compile(r"(?<!\d)(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})(?!\d)")
_ZH_MONTH_DAY = re.compile(rf"(?P<m>{_NUM})月(?P<d>{_NUM})[日号]?")
_ZH_NEXT_MONTH_DAY = re.compile(rf"下个?月(?P<d>{_NUM})[日号]?")
_ZH_IN_DAYS = re.compile(rf"(?P<n>{_NUM})天(?:以后|之后|后)|过(?P<m>{_NUM})天")
_ZH_IN_WEEKS = re.compile(rf"(?P<n>{_NUM})个?(?:周|星期|礼拜)(?:以后|之后|后)")
_ZH_WEEKDAY = re.compile(
    r"(?P<which>下下|下|这|本|上)?个?(?:周|星期|礼拜)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7])"
)
_ZH_DAY = re.compile(rf"(?P<d>{_NUM})[号日]")
_ZH_RELATIVE = (
    ("大后天", 3), ("大前天", -3), ("后天", 2), ("前天", -2), ("明天", 1), ("明日", 1),
    ("明儿", 1), ("今天", 0), ("今日", 0), ("今儿", 0), ("昨天", -1), ("昨日", -1),
)  # fmt: skip
_ZH_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}

_EN_WEEKDAYS = {
    "monday": 0, "mon": 0, "tuesday": 1, "tue": 1, "tues": 1, "wednesday": 2, "wed": 2,
    "thursday": 3, "thu": 3, "thur": 3, "thurs": 3, "friday": 4, "fri": 4, "saturday": 5,
    "sat": 5, "sunday": 6, "sun": 6,
}  # fmt: skip
_EN_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_WEEKDAY = "|".join(sorted(_EN_WEEKDAYS, key=len, reverse=True))
_EN_IN_DAYS = re.compile(
    r"\bin\s+(?P<n>[a-z0-9 -]+?)\s+days?\b|\b(?P<m>[a-z0-9 -]+?)\s+days?\s+from\s+(?:now|today)\b"
)
_EN_IN_WEEKS = re.compile(
    r"\bin\s+(?P<n>a|[a-z0-9 -]+?)\s+weeks?\b|\b(?P<m>a|[a-z0-9 -]+?)\s+weeks?\s+from\s+(?:now|today)\b"
)
_EN_WEEKDAY = re.compile(
    rf"\b(?:(?P<which>next|this|coming|last)\s+(?:week\s+)?)?(?P<wd>{_WEEKDAY})\b"
)
_EN_RELATIVE = (
    ("day after tomorrow", 2), ("day before yesterday", -2), ("tomorrow", 1), ("today", 0),
    ("tonight", 0), ("yesterday", -1),
)  # fmt: skip


# Words that put two dates or times side by side as a choice or a range: "周三还是周四", "friday
# or saturday", "三点到四点", "明后天" (tomorrow or the day after); and clause breaks, so two
# clauses saying different ones ("三点，不对，四点") are no answer either.
_ALTERNATIVES = re.compile(r"或者|或是|还是|或|到|至|\bor\b|[，,。!！?？;；、]")
_TWO_DAYS = re.compile("明后天|今明两?天")


def _said_once(text: str, read: Callable[[str], T | None]) -> T | None:
    """What read makes of the caller's answer, when it says one value: clauses with a negation
    are left out ("明天不行，后天吧" is 后天, "not tomorrow" nothing), and two different values
    offered as a choice or a range ("周三还是周四", "three or four pm") are none — the caller is
    asked again rather than guessed for."""
    folded = normalize(text)
    clauses = [clause for clause in re.split(r"[，,。!！?？;；、]", folded) if clause.strip()]
    kept = unnegated_clauses(folded)
    if len(kept) < len(clauses):
        folded = "，".join(kept)
    if not folded or _TWO_DAYS.search(folded):
        return None
    value = read(folded)
    if value is None:
        return None
    pieces = [piece for piece in _ALTERNATIVES.split(folded) if piece.strip()]
    if len(pieces) > 1 and len({read(piece) for piece in pieces} - {None}) > 1:
        return None
    return value


def parse_date(text: str, today: date) -> date | None:
    """The date the caller said, relative to `today` where the words are relative; or None
    (also for a negated date or a choice of two: see `_said_once`)."""
    return _said_once(text, lambda said: _read_date(said, today))


def _read_date(folded: str, today: date) -> date | None:
    if is_cjk(folded):
        return _zh_date(re.sub(r"\s+", "", folded), today)
    return _en_date(folded, today)


def _zh_date(text: str, today: date) -> date | None:
    for pattern in (_ZH_FULL, _ISO):
        found = pattern.search(text)
        if found:
            return _make(_cn(found["y"]), _cn(found["m"]), _cn(found["d"]))
    found = _ZH_NEXT_MONTH_DAY.search(text)
    if found:
        year, month = (today.year, today.month + 1) if today.month < 12 else (today.year + 1, 1)
        return _make(year, month, _cn(found["d"]))
    found = _ZH_MONTH_DAY.search(text)
    if found:
        return _upcoming_month_day(today, _cn(found["m"]), _cn(found["d"]))
    found = _ZH_IN_WEEKS.search(text)
    if found:
        weeks = _cn(found["n"])
        return today + timedelta(weeks=weeks) if weeks is not None else None
    for word, offset in _ZH_RELATIVE:
        if word in text:
            return today + timedelta(days=offset)
    found = _ZH_IN_DAYS.search(text)
    if found:
        days = _cn(found["n"] or found["m"])
        return today + timedelta(days=days) if days is not None else None
    found = _ZH_WEEKDAY.search(text)
    if found:
        mark = found["wd"]
        weekday = _ZH_WEEKDAYS[mark] if mark in _ZH_WEEKDAYS else int(mark) - 1
        which = {"下下": "next2", "下": "next", "这": "this", "本": "this", "上": "last"}
        return _weekday(today, weekday, which.get(found["which"] or "", ""))
    found = _ZH_DAY.search(text)
    if found:
        return _upcoming_day(today, _cn(found["d"]))
    return None


def _en_date(text: str, today: date) -> date | None:
    found = _ISO.search(text)
    if found:
        return _make(int(found["y"]), int(found["m"]), int(found["d"]))
    words = re.findall(r"[a-z0-9]+", text)
    found_date = _en_month_day(words, today)
    if found_date is not None:
        return found_date
    found = _EN_IN_WEEKS.search(text)
    if found:
        said = found["n"] or found["m"]
        weeks = 1 if said == "a" else english_number(said)
        return today + timedelta(weeks=weeks) if weeks is not None else None
    for phrase, offset in _EN_RELATIVE:
        if re.search(rf"\b{phrase}\b", text):
            return today + timedelta(days=offset)
    found = _EN_IN_DAYS.search(text)
    if found:
        count = english_number(found["n"] or found["m"])
        return today + timedelta(days=count) if count is not None else None
    found = _EN_WEEKDAY.search(text)
    if found:
        which = {"next": "next", "this": "this", "coming": "", "last": "last"}
        return _weekday(today, _EN_WEEKDAYS[found["wd"]], which.get(found["which"] or "", ""))
    for index, word in enumerate(words):
        # "the 5th", "the fifth", or an ordinal with its suffix: a day of this or next month.
        if word == "the" or re.fullmatch(r"\d{1,2}(st|nd|rd|th)", word):
            read = _day_at(words, index + 1 if word == "the" else index)
            if read is not None:
                return _upcoming_day(today, read[0])
    return None


def _en_month_day(words: list[str], today: date) -> date | None:
    """ "march 5th", "march the fifth, 2026", "the 21st of march", "5 march 2026"."""
    for index, word in enumerate(words):
        month = _EN_MONTHS.get(word)
        if month is None:
            continue
        after = index + 1 + (index + 1 < len(words) and words[index + 1] == "the")
        read = _day_at(words, after)
        year_at = after + read[1] if read is not None else index + 1
        if read is None:
            before = index - 1 - (index >= 1 and words[index - 1] == "of")
            read = _day_before(words, before)
        if read is None:
            continue
        year = words[year_at] if year_at < len(words) else ""
        if re.fullmatch(r"\d{4}", year):
            return _make(int(year), month, read[0])
        return _upcoming_month_day(today, month, read[0])
    return None


def _day_at(words: list[str], index: int) -> tuple[int, int] | None:
    """(day, words used) for a day of the month starting at words[index]: two words first."""
    for size in (2, 1):
        if index + size <= len(words):
            day = _day_number(" ".join(words[index : index + size]))
            if day is not None and 1 <= day <= 31:
                return day, size
    return None


def _day_before(words: list[str], last: int) -> tuple[int, int] | None:
    """(day, words used) for a day of the month ending at words[last]: two words first."""
    for size in (2, 1):
        first = last - size + 1
        if first >= 0 and last < len(words):
            day = _day_number(" ".join(words[first : last + 1]))
            if day is not None and 1 <= day <= 31:
                return day, size
    return None


def _cn(text: str | None) -> int | None:
    return spoken_number(text) if text else None


def _day_number(text: str | None) -> int | None:
    """A day of the month: "5", "5th", "fifth", "twenty first", "twenty-one"."""
    if not text:
        return None
    text = text.strip()
    plain = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", text)
    if plain:
        return int(plain.group(1))
    words = re.split(r"[ -]", text)
    if len(words) == 1 and words[0] in _ORDINALS:
        return _ORDINALS[words[0]]
    if len(words) == 2 and words[0] in ("twenty", "thirty") and _ORDINALS.get(words[1], 10) < 10:
        return (20 if words[0] == "twenty" else 30) + _ORDINALS[words[1]]
    return english_number(text)


def _make(year: int | None, month: int | None, day: int | None) -> date | None:
    if year is None or month is None or day is None:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _upcoming_month_day(today: date, month: int | None, day: int | None) -> date | None:
    this_year = _make(today.year, month, day)
    if this_year is not None and this_year >= today:
        return this_year
    # 29 February said in a year without one, or a date already past: the next year's.
    return _make(today.year + 1, month, day) or _make(today.year + 4 - today.year % 4, month, day)


def _upcoming_day(today: date, day: int | None) -> date | None:
    if day is None or not 1 <= day <= 31:
        return None
    if day >= today.day and day <= calendar.monthrange(today.year, today.month)[1]:
        return today.replace(day=day)
    year, month = today.year, today.month
    for _ in range(2):  # the 31st may skip a short month
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
        if day <= calendar.monthrange(year, month)[1]:
            return date(year, month, day)
    return None  # pragma: no cover - two months in a row are never both short of a day <= 31


def _weekday(today: date, weekday: int, which: str) -> date:
    monday = today - timedelta(days=today.weekday())
    weeks = {"this": 0, "next": 1, "next2": 2, "last": -1}
    if which in weeks:
        return monday + timedelta(weeks=weeks[which], days=weekday)
    return today + timedelta(days=(weekday - today.weekday()) % 7)


# -- clock times ----------------------------------------------------------------------------------

_ZH_PERIOD = "凌晨|清晨|早上|早晨|上午|中午|下午|傍晚|晚上|今晚|明晚|昨晚|夜里|夜间|半夜|午夜"
_ZH_TIME = re.compile(
    rf"(?P<p>{_ZH_PERIOD})?(?P<h>{_NUM})(?:点|时)钟?(?:(?P<half>半)|过?(?P<q>[一三])刻|过?(?P<m>{_NUM})分?)?"
)
# "差五分三点" / "三点差五分" / "三点差一刻": so many minutes before the hour.
_ZH_BEFORE = re.compile(
    rf"(?P<p>{_ZH_PERIOD})?(?:差(?P<m>{_NUM})分钟?|差(?P<q>一)刻)(?P<pm>{_ZH_PERIOD})?"
    rf"(?P<h>{_NUM})(?:点|时)钟?"
    rf"|(?P<p2>{_ZH_PERIOD})?(?P<h2>{_NUM})(?:点|时)钟?差(?:(?P<m2>{_NUM})分钟?|(?P<q2>一)刻)"
)
_ZH_CLOCK = re.compile(rf"(?P<p>{_ZH_PERIOD})?(?<!\d)(?P<h>\d{{1,2}})[:：](?P<m>\d{{2}})(?!\d)")
_EN_AMPM = re.compile(
    r"(?<![\d:.])(?P<h>\d{1,2})(?:[: .](?P<m>\d{2}))?\s*(?P<ap>a\.?m\.?|p\.?m\.?)(?![a-z])"
)
# The am/pm said after an hour, wherever the minutes were said: "quarter to 4 pm", "3:30 pm".
_EN_AMPM_MARK = re.compile(r"(?<![\d:.])\d{1,2}(?:[: .]\d{2})?\s*(?P<ap>a|p)\.?m\.?(?![a-z])")
_EN_CLOCK = re.compile(r"(?<![\d:])(?P<h>\d{1,2})[: ](?P<m>\d{2})(?!\d)")
_EN_PAST = re.compile(r"\b(?P<part>half|quarter|\d{1,2})\s+(?:minutes?\s+)?past\s+(?P<h>\d{1,2})\b")
_EN_TO = re.compile(
    r"\b(?P<part>quarter|\d{1,2})\s+(?P<unit>minutes?\s+)?(?:to|before)\s+(?P<h>\d{1,2})\b"
)
_EN_OCLOCK = re.compile(r"(?<![\d:])(?P<h>\d{1,2})\s*o'?\s?clock\b")
_EN_DAYPART = re.compile(r"in the (?P<part>morning|afternoon|evening)|(?P<night>at night|tonight)")


def parse_time(text: str) -> time | None:
    """The clock time the caller said, or None (also for a negated time, a choice of two, or a
    time made a bound or an estimate: "三点多", "三点以后", "after 3 pm")."""
    return _said_once(text, _read_time)


def _read_time(folded: str) -> time | None:
    if is_cjk(folded):
        return _zh_time(re.sub(r"\s+", "", folded))
    return _en_time(folded)


def _zh_time(text: str) -> time | None:
    found = _ZH_CLOCK.search(text)
    if found:
        if _ZH_BOUND_AFTER.match(text, found.end()):
            return None
        return _clock(_zh_hour(found["p"], int(found["h"])), int(found["m"]))
    found = _ZH_BEFORE.search(text)
    if found:
        return _zh_before(found)
    found = _ZH_TIME.search(text)
    if not found or _ZH_BOUND_AFTER.match(text, found.end()):
        return None
    hour = _cn(found["h"])
    if hour is None:
        return None
    minute = 30 if found["half"] else 15 if found["q"] == "一" else 45 if found["q"] else 0
    if found["m"]:
        parsed = _cn(found["m"])
        if parsed is None:
            return None
        minute = parsed
    return _clock(_zh_hour(found["p"], hour), minute)


def _zh_before(found: re.Match[str]) -> time | None:
    hour = _cn(found["h"] or found["h2"])
    minutes = 15 if (found["q"] or found["q2"]) else _cn(found["m"] or found["m2"])
    if hour is None or minutes is None or not 0 < minutes < 60:
        return None
    on_the_hour = _clock(_zh_hour(found["p"] or found["pm"] or found["p2"], hour), 0)
    if on_the_hour is None:
        return None
    return _clock((on_the_hour.hour - 1) % 24, 60 - minutes)


def _zh_hour(period: str | None, hour: int) -> int:
    if period in ("下午", "傍晚") and hour < 12:
        return hour + 12
    if period == "中午" and hour < 5:
        return hour + 12
    if period in ("晚上", "今晚", "明晚", "昨晚", "夜里", "夜间"):
        return 0 if hour == 12 else hour + 12 if hour < 12 else hour
    if period in ("凌晨", "半夜", "午夜") and hour == 12:
        return 0
    if period in ("半夜", "午夜") and 6 <= hour < 12:
        return hour + 12
    return hour


# Words that make a time a bound or an estimate, not the time: "三点多" (past three),
# "三点以后", "三点前"; "after 3 pm", "later", "between", "before noon" (but "ten minutes before
# nine" and "quarter before nine" say the minutes).
_ZH_BOUND_AFTER = re.compile("多|以后|之后|过后|以前|之前|前|后")
_EN_BOUND = re.compile(
    r"\b(?:after|later|earlier|latest|between)\b"
    r"|(?<!minutes )(?<!minute )(?<!quarter )(?<![0-9] )\bbefore\b"
)


# Hesitations, polite words and approximations around a bare hour ("um, at 9 in the morning
# please", "around three thanks"): left out before the hour is read.
_EN_AROUND_HOUR = re.compile(
    r"(?<=\s)(?:um+|uh+|er+|erm|well|so|ok|okay|maybe|around|about|roughly|say|please|thanks"
    r"|thank you|how about)[\s,.!?]+"
)


def _en_time(text: str) -> time | None:
    if _EN_BOUND.search(_digits_for_words(text)):
        return None
    if re.search(r"\b(noon|midday)\b", text):
        return time(12, 0)
    if re.search(r"\bmidnight\b", text):
        return time(0, 0)
    spoken = _digits_for_words(text)
    daypart = _EN_DAYPART.search(spoken)
    part = "" if daypart is None else "night" if daypart["night"] else daypart["part"]
    marked = _EN_AMPM_MARK.search(spoken)
    if marked:
        # am/pm is a part of the day like "in the afternoon": "half past 3 pm" keeps its minutes.
        part = f"{marked['ap']}m"
    found = _EN_PAST.search(spoken)
    if found:
        fraction = found["part"]
        minute = 30 if fraction == "half" else 15 if fraction == "quarter" else int(fraction)
        return _clock(_en_hour(int(found["h"]), part), minute)
    found = _EN_TO.search(spoken)
    if found:
        minutes = 15 if found["part"] == "quarter" else int(found["part"])
        if minutes % 5 and not found["unit"]:
            return None  # "3 to 4 pm" is a range; "three minutes to four" says minutes

        hour = _en_hour(int(found["h"]), part)
        if hour is None or not 0 < minutes < 60:
            return None
        return _clock((hour - 1) % 24, 60 - minutes)
    found = _EN_AMPM.search(spoken)
    if found:
        return _clock(_en_hour(int(found["h"]), part), int(found["m"] or 0))
    found = _EN_CLOCK.search(spoken)
    if found:
        return _clock(_en_hour(int(found["h"]), part), int(found["m"]))
    found = _EN_OCLOCK.search(spoken) or re.fullmatch(
        r"(?:at\s+)?(?P<h>\d{1,2})(?:\s+(?:in the \w+|at night|tonight))?",
        _EN_AROUND_HOUR.sub(" ", f" {spoken} ").strip(" ,.!?"),
    )
    if found:
        return _clock(_en_hour(int(found["h"]), part), 0)
    return None


def _en_hour(hour: int, part: str) -> int | None:
    """A 12-hour clock hour in 24 hours, by the part of the day said with it (None: no such
    hour, as "13 pm")."""
    if part in ("am", "pm"):
        if not 1 <= hour <= 12:
            return None
        return hour % 12 + (12 if part == "pm" else 0)
    if part in ("afternoon", "evening") and hour < 12:
        return hour + 12
    if part == "night":
        # "eleven at night" is 23:00, "twelve at night" midnight, "two at night" 02:00.
        return 0 if hour == 12 else hour + 12 if 5 <= hour < 12 else hour
    if part == "morning" and hour == 12:
        return 0
    return hour


def _digits_for_words(text: str) -> str:
    """ "three thirty pm" → "3 30 pm"; "seven oh five" → "7 05"; other words stay."""
    out: list[str] = []
    words = text.replace("-", " ").split()
    index = 0
    while index < len(words):
        word = words[index]
        following = words[index + 1] if index + 1 < len(words) else ""
        tens = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50}.get(word)
        unit = english_number(word) if word not in ("a", "an", "and") else None
        if tens is not None:
            extra = english_number(following) if following else None
            if extra is not None and 0 < extra < 10:
                out.append(str(tens + extra))
                index += 2
                continue
            out.append(str(tens))
        elif (
            word in ("oh", "o")
            and out
            and following
            and (english_number(following) or -1) in range(10)
        ):
            out.append(f"0{english_number(following)}")
            index += 2
            continue
        elif unit is not None:
            out.append(str(unit))
        else:
            out.append(word)
        index += 1
    return " ".join(out)


def _clock(hour: int | None, minute: int | None) -> time | None:
    if hour is None or minute is None:
        return None
    if hour == 24 and minute == 0:
        return time(0, 0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)
