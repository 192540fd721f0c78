"""Understanding what the caller said or pressed: pure text functions, Chinese and English.

Keyword matching is substring matching for CJK keywords and whole-word matching for Latin ones,
so "bill" does not fire inside "billion" while "话费" fires inside "我想查话费". A keyword preceded
by a negation in the same clause ("不要人工", "not the bill") does not count.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_CLAUSE_BREAK = re.compile(r"[，,。.!！?？;；、]")
_NEGATIONS_ZH = ("不要", "不用", "不想", "不需要", "别", "不是", "没有", "不")
_NEGATIONS_EN = frozenset({"not", "no", "don't", "dont", "never", "without", "nope"})
# Chinese negations bind to what closely follows; a wider window would let "不" in
# "我不知道，转人工" reach across words, so only this many characters before a keyword count.
_ZH_NEGATION_WINDOW = 3
_EN_NEGATION_WINDOW = 3

_DIGIT_CHARS = {
    "零": "0", "〇": "0", "洞": "0",
    "一": "1", "幺": "1", "壹": "1",
    "二": "2", "两": "2", "贰": "2",
    "三": "3", "叁": "3",
    "四": "4", "肆": "4",
    "五": "5", "伍": "5",
    "六": "6", "陆": "6",
    "七": "7", "拐": "7", "柒": "7",
    "八": "8", "捌": "8",
    "九": "9", "勾": "9", "玖": "9",
}  # fmt: skip
_DIGIT_WORDS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_DIGIT_FILLERS = re.compile(r"[\s\-–—_.·,，。()（）]+")

_YES = ("是的", "是", "对的", "对", "好的", "好", "可以", "嗯", "确认", "没错", "行")
_NO = ("不是", "不对", "不用了", "不用", "不要", "不行", "不", "否", "没有", "算了")
_YES_EN = frozenset({"yes", "yeah", "yep", "sure", "correct", "right", "ok", "okay", "confirm"})
_NO_EN = frozenset({"no", "nope", "not", "wrong", "incorrect", "cancel", "nah"})


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def normalize(text: str) -> str:
    """Folds width, case and typographic apostrophes, and trims, so "Don’t" matches "don't"."""
    return unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower().strip()


def _is_cjk(text: str) -> bool:
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text)


def _negated_zh(clause: str, start: int) -> bool:
    window = clause[max(0, start - _ZH_NEGATION_WINDOW) : start]
    return any(neg in window for neg in _NEGATIONS_ZH)


def _negated_en(before: str) -> bool:
    return any(word in _NEGATIONS_EN for word in _words(before)[-_EN_NEGATION_WINDOW:])


def find_keyword(text: str, keywords: Iterable[str]) -> str | None:
    """Returns the longest keyword the caller said without negating it, or None.

    Args:
        text: The caller's utterance (any case or width).
        keywords: Candidate keywords; Chinese ones match as substrings, Latin ones as words.
    """
    best: str | None = None
    for clause in _CLAUSE_BREAK.split(normalize(text)):
        for keyword in keywords:
            key = normalize(keyword)
            if not key or (best is not None and len(key) <= len(best)):
                continue
            if _matches_in_clause(clause, key):
                best = keyword
    return best


def _matches_in_clause(clause: str, key: str) -> bool:
    if _is_cjk(key):
        start = clause.find(key)
        while start != -1:
            if not _negated_zh(clause, start):
                return True
            start = clause.find(key, start + 1)
        return False
    for found in re.finditer(rf"(?<![a-z0-9']){re.escape(key)}(?![a-z0-9'])", clause):
        if not _negated_en(clause[: found.start()]):
            return True
    return False


def spoken_digits(text: str) -> str | None:
    """Turns a spoken or typed digit string into ASCII digits, or None if it is not one.

    Handles ASCII and full-width digits, Chinese digit characters (including 幺 and 两 as
    spoken in phone numbers), English digit words, and spaces, dashes and dots between them:
    "幺三八 零零一三 八零零零" and "one three eight" both work.
    """
    folded = normalize(text)
    for word, digit in _DIGIT_WORDS.items():
        folded = re.sub(rf"(?<![a-z]){word}(?![a-z])", digit, folded)
    folded = "".join(_DIGIT_CHARS.get(ch, ch) for ch in folded)
    folded = _DIGIT_FILLERS.sub("", folded)
    return folded if folded.isdigit() and folded.isascii() else None


_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}


def spoken_number(text: str) -> int | None:
    """Parses an integer said as digits or as a Chinese numeral ("两百五十" → 250), or None."""
    digits = spoken_digits(text)
    if digits is not None:
        return int(digits)
    folded = normalize(text)
    if not folded or any(
        ch not in _DIGIT_CHARS and ch not in _CN_UNITS and ch not in _CN_BIG_UNITS for ch in folded
    ):
        return None
    # Read like the numeral is spoken: 一亿 | 五千万 | 三百二十一 — each big unit closes the
    # sections below it, so 万 scales only what came after the last 亿.
    done, wan_part, section, pending = 0, 0, 0, None
    for ch in folded:
        if ch in _DIGIT_CHARS:
            pending = int(_DIGIT_CHARS[ch])
        elif ch in _CN_UNITS:
            section += (1 if pending is None else pending) * _CN_UNITS[ch]
            pending = None
        elif ch == "万":
            wan_part = (section + (pending or 0)) * _CN_BIG_UNITS[ch]
            section, pending = 0, None
        else:
            done = (done + wan_part + section + (pending or 0)) * _CN_BIG_UNITS[ch]
            wan_part, section, pending = 0, 0, None
    return done + wan_part + section + (pending or 0)


def yes_or_no(text: str) -> bool | None:
    """Returns True for an affirmative answer, False for a negative one, None otherwise.

    Negative forms are tried first because most Chinese ones contain an affirmative
    ("不是" contains "是").
    """
    folded = normalize(text)
    words = set(_words(folded))
    if words & _NO_EN or any(folded.startswith(no) for no in _NO):
        return False
    if words & _YES_EN or any(folded.startswith(yes) for yes in _YES):
        return True
    return None


@dataclass(frozen=True, slots=True)
class DigitsCheck:
    """Why a digit string was accepted or not."""

    value: str | None
    problem: str = ""


def check_digits(digits: str, min_length: int, max_length: int, pattern: str) -> DigitsCheck:
    """Validates a digit string against length bounds and an optional full-match regex."""
    if not min_length <= len(digits) <= max_length:
        return DigitsCheck(None, f"{len(digits)} digits, expected {min_length}-{max_length}")
    if pattern and re.fullmatch(pattern, digits) is None:
        return DigitsCheck(None, f"does not match {pattern}")
    return DigitsCheck(digits)
