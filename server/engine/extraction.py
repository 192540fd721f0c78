"""Values inside a sentence: the stretches of an utterance a slot type may read as its value.

Callers rarely say a bare value: "我的号码是幺三八零零一三八零零零", "大概一千块吧", "my number is
one three eight …", "I want two tickets please". `readings` finds the stretches made of number
words, digits and the joining words and marks a slot type gives (money units, signs), and reads
each with the slot type's own reader, longest first from left to right, so "两百五十块" is one
amount and never 两 and 五十. Deciding between several readings is the caller's business (a slot
re-asks rather than guesses).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import TypeVar

from server.engine.matching import NUMBER_JOINERS, NUMBER_WORDS, normalize

T = TypeVar("T")

# Latin words, digit runs, single CJK characters and single marks, each with its place.
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[0-9]+|[\u3400-\u9fff]|[^\sa-z0-9\u3400-\u9fff]")
# Marks that may sit inside a spoken or written value ("138-0013", "3.50", "10:30", "1,000").
_INNER_MARKS = frozenset("+-−.:,$¥€£")
# What may be left over around a value without making its stretch unclear.
_FILLERS = frozenset({"a", "an", "and", *_INNER_MARKS})
# Words that say part of a number without being one: "three and a half" is no whole number.
_FRACTIONS = frozenset({"half", "quarter", "quarters", "thirds", "percent"})
# Chinese words with a numeral in them that say no number ("一共", "一下", "万一"): masked.
_NOT_NUMBERS_ZH = re.compile(
    "一共|一下|一些|一起|一样|一直|一定|一般|一会|一切|万一|统一|唯一|一边|一旦|一向|一律|一致|一再"
)
# Words right next to a number that make it an estimate or a bound, not the value: "几百块",
# "十几个", "一千多块", "一百来块", "五个以上", "不到十个", "more than five", "over twenty",
# "twenty something", "1.5k". A counter word (个, 人, 块 …) may sit between a number and 以上.
_ESTIMATE_BEFORE = re.compile(
    r"(?:几|第|不到|超过|多于|少于|大于|小于|至少|起码|最少|不止|"
    r"\b(?:more than|less than|fewer than|over|under|above|below|at least|no more than))\s*$"
)
_ESTIMATE_AFTER = re.compile(
    r"^\s*(?:几|多|来(?!着)|余|[个位人张块元钱岁件台]?(?:以上|以下|以内|之内|之上|之下|出头)"
    r"|(?:k|something|odd|or more|or less|or fewer)\b)"
)
# Classifiers: a number right before one counts things ("一个人", "两张"), so it is no money, and
# a numeral between a money unit and one starts the count ("两百块一个人" is 200 a head, not
# 两百块一 = 200.10).
_CLASSIFIERS = frozenset("个位人张件份只口次天岁台本间家条斤克米瓶杯盒箱包袋")
_CJK_UNITS = frozenset("十百千万亿")
# Bounds, so a long utterance costs a bounded number of reads: the tokens looked at, and the
# longest stretch read as one value (a phone number said digit by digit with "plus" is ~14).
_MAX_TOKENS = 200
_MAX_STRETCH = 32


def readings(
    text: str,
    read: Callable[[str], T | None],
    joiners: Collection[str] = (),
    *,
    counts: bool = True,
) -> list[T]:
    """What `read` makes of each value-like stretch of text, left to right.

    A stretch is a run of number words, digits, joiners and marks ("三百五十块", "three dollars
    fifty", "+86 138 0013 8000"). It gives a value only when `read` understands it as one
    value, the longest from its first number on, with nothing that says a number left over:
    "十五六" (fifteen or sixteen), "三毛五块" and "three and a half" give none; nor does one the
    words next to it make an estimate or a bound ("一千多块", "十几个", "五个以上", "more than
    five").

    Args:
        text: The utterance.
        read: A slot type's reader: a value (valid or not) for a stretch it understands, else
            None.
        joiners: Further words and marks that belong to a value of this type but say no
            number themselves (money units, signs, "plus").
        counts: Whether a number that counts things (right before a classifier: "一个人") may
            be the value; not for money.
    """
    folded = _NOT_NUMBERS_ZH.sub(lambda found: "_" * len(found.group(0)), normalize(text))
    tokens = list(_TOKEN.finditer(folded))[:_MAX_TOKENS]
    joining = {*NUMBER_JOINERS, *_INNER_MARKS, *_FRACTIONS, *joiners}
    found: list[T] = []
    index = 0
    while index < len(tokens):
        end = index
        while end < len(tokens) and end - index < _MAX_STRETCH:
            word = tokens[end].group(0)
            if not (_says_number(word) or word in joining):
                break
            end += 1
        counted = (
            end > index
            and _says_number(tokens[end - 1].group(0))
            and end < len(tokens)
            and tokens[end].group(0) in _CLASSIFIERS
            and not folded.startswith("人民币", tokens[end].start())
        )
        if counted and end - index >= 2 and _starts_count(tokens[end - 2], tokens[end - 1]):
            end -= 1  # "两百块|一个人": the numeral starts the next stretch
        value = _one_value(folded, tokens[index:end], read) if end > index else None
        if not counts and counted and end < len(tokens) and tokens[end].group(0) in _CLASSIFIERS:
            value = None  # "一个人": a count, no money
        if value is not None and _estimated(folded, tokens[index].start(), tokens[end - 1].end()):
            value = None
        if value is not None:
            found.append(value)
        index = max(end, index + 1)
    return found


def _starts_count(before: re.Match[str], numeral: re.Match[str]) -> bool:
    """Whether numeral, right before a classifier, follows a word that says no number (a money
    unit: "块一个"), and so begins a count rather than ending the value before it."""
    word = numeral.group(0)
    return (
        word in NUMBER_WORDS
        and word not in _CJK_UNITS
        and not word.isascii()
        and not _says_number(before.group(0))
    )


def _estimated(folded: str, start: int, end: int) -> bool:
    """Whether the words next to folded[start:end] make its number an estimate or a bound."""
    return bool(
        _ESTIMATE_BEFORE.search(folded[max(0, start - 16) : start])
        or _ESTIMATE_AFTER.match(folded[end : end + 16])
    )


def _says_number(word: str) -> bool:
    return word in NUMBER_WORDS or word.isdigit()


def _one_value(
    folded: str, stretch: list[re.Match[str]], read: Callable[[str], T | None]
) -> T | None:
    """The one value of a stretch: read in longest pieces from the left; None unless exactly
    one piece was understood and nothing but fillers is left over."""
    values: list[T] = []
    unclear = False
    index = 0
    while index < len(stretch):
        piece = _longest(folded, stretch, index, read)
        if piece is None:
            unclear = unclear or stretch[index].group(0) not in _FILLERS
            index += 1
            continue
        value, index = piece
        values.append(value)
    return values[0] if len(values) == 1 and not unclear else None


def _longest(
    folded: str, stretch: list[re.Match[str]], first: int, read: Callable[[str], T | None]
) -> tuple[T, int] | None:
    """The value of the longest stretch[first:last] that says a number and that read
    understands, and last."""
    for last in range(len(stretch), first, -1):
        piece = stretch[first:last]
        if not any(_says_number(token.group(0)) for token in piece):
            continue  # joiners alone ("oh", "a", "块") are no value
        value = read(folded[piece[0].start() : piece[-1].end()])
        if value is not None:
            return value, last
    return None
