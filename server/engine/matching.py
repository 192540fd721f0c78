"""Understanding what the caller said or pressed: pure text functions, Chinese and English.

Keyword matching is substring matching for CJK keywords and whole-word matching for Latin ones,
so "bill" does not fire inside "billion" while "话费" fires inside "我想查话费". A keyword preceded
by a negation in the same clause ("不要人工", "not the bill", "别给我转人工", "I would rather not
speak to a person") does not count; neither does a regular-expression or fuzzy match that a
negation precedes.

`understand` picks one of several candidates (menu choices, commands, options of a choice slot)
in two stages: exact (keywords and patterns, the longest match wins) and, only when nothing
matched exactly, fuzzy (rapidfuzz similarity of a keyword to a same-sized stretch of the
utterance, the highest score at or above a threshold wins). Ties go to the earlier candidate and
are reported, so a flow author can see why.

Numbers are read as callers say them: digit strings in any script ("幺三八", "one three eight",
"１３８"), Chinese numerals ("两百五十", colloquial "两百五" = 250), English number words ("twenty
five", "a hundred and five") and decimals ("三点五", "three point five").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from rapidfuzz import fuzz

_CLAUSE_BREAK = re.compile(r"[，,。.!！?？;；、]")
_NEGATIONS_ZH = (
    "不需要", "不愿意", "不要", "不用", "不想", "不必", "不需", "不愿", "无需", "拒绝", "别", "甭",
    "不是", "没有", "没", "不",
)  # fmt: skip
_NEGATIONS_EN = frozenset(
    {"not", "no", "don't", "dont", "never", "without", "nope", "won't", "wont", "refuse"}
)
# Chinese negations bind to what closely follows; a wider window would let "不" in
# "我不知道，转人工" reach across words, so only this many characters before a keyword count.
_ZH_NEGATION_WINDOW = 3
_EN_NEGATION_WINDOW = 3
# Further back, a negation still reaches a keyword when only these words lie between: the
# verbs, pronouns and particles of a refusal ("别给我转人工", "不要转接人工客服", "I would rather
# not speak to a person"), and the keywords being matched themselves. Any other word ends its
# reach ("我不知道转人工", "no I mean we want the bill"), and so does this many characters/words.
_ZH_BRIDGES = (
    "给我", "帮我", "替我", "转接", "转到", "转给", "接通", "接到", "连接", "联系", "需要", "说话",
    "一下", "一个", "那个", "这个", "给", "帮", "替", "我", "你", "您", "们", "转", "接", "连",
    "找", "跟", "和", "同", "与", "让", "叫", "把", "去", "要", "用", "想", "需", "请", "打", "说",
    "的", "个", "位", "再",
)  # fmt: skip
_EN_BRIDGES = frozenset(
    {
        "transfer", "transferred", "transferring", "connect", "connected", "connecting", "put",
        "putting", "pass", "send", "forward", "route", "speak", "speaking", "talk", "talking",
        "chat", "get", "getting", "give", "go", "be", "being", "want", "wanna", "need", "like",
        "to", "me", "us", "an", "a", "the", "any", "with", "through", "please", "just", "really",
        "another", "real", "live", "of", "my", "for", "now", "call", "ask", "asking", "asked",
        "looking", "said", "say",
    }
)  # fmt: skip
_ZH_NEGATION_REACH = 10
_EN_NEGATION_REACH = 8
# A question "能不能", "要不要", "可不可(以)" asks, it refuses nothing: "能不能转人工" wants an agent.
# Masked (same length) before negations are looked for; "不要不要" stays a refusal.
# So are 没错 (right) and 没问题 (no problem): "没错，转人工" / "没问题转人工" want an agent.
_A_NOT_A = re.compile(r"(?<!不)([^\s不])不\1|没错|没问题")

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
_NO = ("不是", "不对", "不用了", "不用", "不要", "不行", "不", "否", "没有", "算了", "错了")
_YES_EN = frozenset({"yes", "yeah", "yep", "sure", "correct", "right", "ok", "okay", "confirm"})
_NO_EN = frozenset({"no", "nope", "not", "wrong", "incorrect", "cancel", "nah"})


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})


def normalize(text: str) -> str:
    """Folds width, case and typographic apostrophes, and trims, so "Don’t" matches "don't"."""
    return unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).lower().strip()


# A turn matches one utterance against every keyword of every choice and command, so the same
# few strings are folded dozens of times per turn: folding is pure, so the results are kept
# (keywords are a flow's finite set; utterances only for as long as a turn's matching lasts).
_fold_keyword = lru_cache(maxsize=4096)(normalize)


@lru_cache(maxsize=128)
def _clauses(text: str) -> tuple[str, ...]:
    """The folded utterance cut at punctuation: negation never reaches across a clause."""
    return tuple(_CLAUSE_BREAK.split(normalize(text)))


@lru_cache(maxsize=4096)
def _as_word(key: str) -> re.Pattern[str]:
    """Finds a Latin keyword as whole words (not inside a longer word or number)."""
    return re.compile(rf"(?<![a-z0-9']){re.escape(key)}(?![a-z0-9'])")


def is_cjk(text: str) -> bool:
    """Whether text has a CJK character (and so is read by Chinese rules)."""
    return any("\u3400" <= ch <= "\u9fff" for ch in text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text)


def _negated_zh(clause: str, start: int, keywords: tuple[str, ...] = ()) -> bool:
    clause = _A_NOT_A.sub(lambda found: "_" * len(found.group(0)), clause)
    window = clause[max(0, start - _ZH_NEGATION_WINDOW) : start]
    if any(neg in window for neg in _NEGATIONS_ZH):
        return True
    before = clause[max(0, start - _ZH_NEGATION_REACH) : start]
    bridge = _zh_bridge(keywords)
    for neg in _NEGATIONS_ZH:
        at = before.find(neg)
        while at != -1:
            if bridge.fullmatch(before, at + len(neg)):
                return True
            at = before.find(neg, at + 1)
    return False


@lru_cache(maxsize=256)
def _zh_bridge(keywords: tuple[str, ...]) -> re.Pattern[str]:
    """What may stand between a negation and the keyword it negates: bridges and (CJK) keywords."""
    cjk = (key for key in keywords if is_cjk(key))
    words = sorted({*_ZH_BRIDGES, *cjk}, key=len, reverse=True)
    return re.compile("(?:" + "|".join(map(re.escape, words)) + ")*")


def _negated_en(before: str, keywords: tuple[str, ...] = ()) -> bool:
    words = _words(before)
    if any(word in _NEGATIONS_EN for word in words[-_EN_NEGATION_WINDOW:]):
        return True
    bridges = _en_bridges(keywords)
    for word in reversed(words[-_EN_NEGATION_REACH:]):
        if word in _NEGATIONS_EN:
            return True
        if word not in bridges:
            return False
    return False


@lru_cache(maxsize=256)
def _en_bridges(keywords: tuple[str, ...]) -> frozenset[str]:
    """Words that may stand between a negation and what it negates: bridges and keywords' words."""
    return _EN_BRIDGES.union(*(_words(key) for key in keywords))


def find_keyword(text: str, keywords: Iterable[str]) -> str | None:
    """Returns the longest keyword the caller said without negating it, or None.

    Args:
        text: The caller's utterance (any case or width).
        keywords: Candidate keywords; Chinese ones match as substrings, Latin ones as words.
    """
    best: str | None = None
    folded, forms = _keyword_forms(tuple(keywords))
    for clause in _clauses(text):
        for keyword, key, cjk in forms:
            if best is not None and len(key) <= len(best):
                continue
            if _matches_in_clause(clause, key, cjk, folded):
                best = keyword
    return best


@lru_cache(maxsize=1024)
def _keyword_forms(
    keywords: tuple[str, ...],
) -> tuple[tuple[str, ...], tuple[tuple[str, str, bool], ...]]:
    """Every keyword folded, and (keyword, folded, whether CJK) for those not folded away."""
    folded = tuple(_fold_keyword(keyword) for keyword in keywords)
    forms = tuple(
        (keyword, key, is_cjk(key)) for keyword, key in zip(keywords, folded, strict=True) if key
    )
    return folded, forms


def _matches_in_clause(clause: str, key: str, cjk: bool, keywords: tuple[str, ...]) -> bool:
    if cjk:
        start = clause.find(key)
        while start != -1:
            if not _negated_zh(clause, start, keywords):
                return True
            start = clause.find(key, start + 1)
        return False
    for found in _as_word(key).finditer(clause):
        if not _negated_en(clause[: found.start()], keywords):
            return True
    return False


def find_pattern(text: str, patterns: Iterable[str]) -> tuple[str, str] | None:
    """Returns (pattern, what it matched) for the longest un-negated regex match, or None.

    Patterns are searched (not full-matched) in each clause of the folded utterance, so they
    are written in lower case and may match anywhere; a match preceded by a negation in its
    clause does not count, as for keywords.
    """
    best: tuple[str, str] | None = None
    for clause in _clauses(text):
        for pattern in patterns:
            for found in re.finditer(pattern, clause):
                said = found.group(0)
                if not said or (best is not None and len(said) <= len(best[1])):
                    continue
                if not _negated_at(clause, found.start(), said):
                    best = (pattern, said)
    return best


def _negated_at(clause: str, start: int, said: str) -> bool:
    return _negated_zh(clause, start) if is_cjk(said) else _negated_en(clause[:start])


# Shorter keywords differ by one character at similarities below any useful threshold, and
# match unrelated words too easily ("no" ~ "now"): they only match exactly.
FUZZY_MIN_LENGTH = 4


def fuzzy_keyword(
    text: str, keywords: Iterable[str], threshold: float
) -> tuple[str, str, float] | None:
    """Returns (keyword, what was said, score) for the most similar keyword, or None.

    Each keyword is compared (rapidfuzz ratio, 0-100) with every stretch of the utterance of
    about its size: CJK keywords with runs of characters, Latin ones with runs of whole words,
    so "biling" ~ "billing" but "bill" never ~ "billion". Keywords shorter than
    FUZZY_MIN_LENGTH, scores below `threshold` and negated stretches do not count; on equal
    scores the earlier keyword wins.
    """
    best: tuple[str, str, float] | None = None
    for clause in _clauses(text):
        for keyword in keywords:
            key = _fold_keyword(keyword)
            if len(key) < FUZZY_MIN_LENGTH:
                continue
            for said, start in _windows(clause, key):
                score = round(fuzz.ratio(said, key), 1)
                if score < threshold or (best is not None and score <= best[2]):
                    continue
                if not _negated_at(clause, start, said):
                    best = (keyword, said, score)
    return best


def _windows(clause: str, key: str) -> Iterable[tuple[str, int]]:
    """Stretches of the clause about as long as key: (text, start), one size smaller to larger."""
    if is_cjk(key):
        for size in (len(key) - 1, len(key), len(key) + 1):
            for start in range(len(clause) - size + 1):
                yield clause[start : start + size], start
        return
    spans = [(m.group(0), m.start()) for m in re.finditer(r"[a-z0-9']+", clause)]
    count = len(_words(key))
    for size in (count - 1, count, count + 1):
        if size < 1:
            continue
        for first in range(len(spans) - size + 1):
            yield " ".join(word for word, _ in spans[first : first + size]), spans[first][1]


@dataclass(frozen=True, slots=True)
class Candidate:
    """Something the caller may mean: its keywords and regular expressions."""

    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Hit:
    """How an utterance matched one candidate.

    Attributes:
        index: The candidate's position in the list given to `understand`.
        how: "keyword", "pattern" or "fuzzy".
        term: The keyword or pattern that matched.
        said: The part of the utterance that matched it.
        score: Exact matches: the length of what matched; fuzzy ones: the similarity (0-100).
    """

    index: int
    how: str
    term: str
    said: str
    score: float

    def describe(self) -> str:
        """A short explanation for diagnostics."""
        if self.how == "fuzzy":
            return f"fuzzy '{self.said}'~'{self.term}' {self.score:g}"
        if self.how == "pattern":
            return f"pattern '{self.term}' on '{self.said}'"
        return f"keyword '{self.term}'"


@dataclass(frozen=True, slots=True)
class Understood:
    """The winning candidate (or None) and the later candidates that scored the same."""

    hit: Hit | None
    ties: tuple[Hit, ...] = ()


def understand(
    text: str, candidates: Sequence[Candidate], *, fuzzy_threshold: float = 0
) -> Understood:
    """Picks the candidate the caller meant, exactly if possible, else fuzzily, else none.

    Exact stage: every candidate's longest un-negated keyword or pattern match; the longest
    match wins. Fuzzy stage, only when nothing matched exactly and fuzzy_threshold > 0: the
    highest similarity at or above the threshold wins. In both, equal scores go to the earlier
    candidate and the others are reported in `ties`.
    """
    exact: list[Hit] = []
    for index, candidate in enumerate(candidates):
        hit: Hit | None = None
        keyword = find_keyword(text, candidate.keywords)
        if keyword is not None:
            hit = Hit(index, "keyword", keyword, keyword, len(_fold_keyword(keyword)))
        found = find_pattern(text, candidate.patterns)
        if found is not None and (hit is None or len(found[1]) > hit.score):
            hit = Hit(index, "pattern", found[0], found[1], len(found[1]))
        if hit is not None:
            exact.append(hit)
    if exact:
        return _pick(exact)
    if fuzzy_threshold <= 0:
        return Understood(None)
    fuzzy = [
        Hit(index, "fuzzy", near[0], near[1], near[2])
        for index, candidate in enumerate(candidates)
        if (near := fuzzy_keyword(text, candidate.keywords, fuzzy_threshold)) is not None
    ]
    return _pick(fuzzy) if fuzzy else Understood(None)


def _pick(hits: list[Hit]) -> Understood:
    top = max(hit.score for hit in hits)
    winners = [hit for hit in hits if hit.score == top]
    return Understood(winners[0], tuple(winners[1:]))


def expand(keywords: Iterable[str], synonyms: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The keywords plus every synonym of each (synonyms: folded word → its whole group)."""
    expanded = dict.fromkeys(keywords)
    for keyword in list(expanded):
        expanded.update(dict.fromkeys(synonyms.get(normalize(keyword), ())))
    return tuple(expanded)


def spoken_digits(text: str) -> str | None:
    """Turns a spoken or typed digit string into ASCII digits, or None if it is not one.

    Handles ASCII and full-width digits, Chinese digit characters (including 幺 and 两 as
    spoken in phone numbers), English digit words, "double"/"triple" before a digit (as English
    speakers read phone numbers), and spaces, dashes and dots between them:
    "幺三八 零零一三 八零零零", "one three eight" and "double five one" all work.
    """
    if text.isascii() and text.isdigit():
        return text  # keys as pressed, or typed digits: nothing to fold (most calls of this)
    folded = normalize(text)
    for word, digit in _DIGIT_WORDS.items():
        folded = re.sub(rf"(?<![a-z]){word}(?![a-z])", digit, folded)
    folded = "".join(_DIGIT_CHARS.get(ch, ch) for ch in folded)
    folded = _REPEATED_DIGIT.sub(lambda m: m.group(2) * _REPEATS[m.group(1)], folded)
    folded = _DIGIT_FILLERS.sub("", folded)
    return folded if folded.isdigit() and folded.isascii() else None


# What a caller says around a key at a menu ("按二", "我选2号", "嗯，二吧", "press two", "option
# 2 please"): stripped before the rest is read as a single spoken key.
_KEY_AROUND = re.compile(
    r"^(?:嗯|呃|额|那个|um|uh|er|[\s，,。.、])*"
    r"(?:我要按|我按|请按|按键|按|我选|选择|选|i'll press|i press|press|option|number|choice|key)?"
    r"\s*(?P<key>.+?)\s*"
    r"(?:号键|键|号|吧|呢|啊|吗|please|thanks|thank you|[\s，,。.!！、])*$"
)


def spoken_key(text: str) -> str:
    """The key a caller says at a menu: a single spoken digit, alone or with the words around
    it ("二", "按二", "我选2号", "嗯，二吧", "press two", "option 2 please"); else "" (also for
    "oh" alone)."""
    found = _KEY_AROUND.match(normalize(text))
    if found is None or found["key"] in ("oh", "o"):
        return ""  # "Oh." alone is surprise, not key 0 (an agent at most menus)
    digits = spoken_digits(found["key"])
    return digits if digits is not None and len(digits) == 1 else ""


_REPEATS = {"double": 2, "triple": 3}
_REPEATED_DIGIT = re.compile(r"(?<![a-z])(double|triple)\s*(\d)")
_CN_UNITS = {"十": 10, "百": 100, "千": 1000}
_CN_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
_CN_ZEROS = frozenset("零〇洞")
_CN_TOKEN = re.compile(r"[0-9]+|\S")

_EN_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_EN_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_EN_SCALES = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_EN_SPLIT = re.compile(r"[\s\-,]+")


# Two neighbouring numerals said together are an estimate, not digits: "两三个" is two or
# three (never 23), like "十五六" (`chinese_number`).
_ZH_ESTIMATE = re.compile("一两|两三|二三|三四|四五|五六|六七|七八|八九")


def spoken_number(text: str) -> int | None:
    """Parses a whole number said as digits, a Chinese numeral or English words, or None.

    "42", "一二三" (digits: 123), "两百五十" and colloquial "两百五" (250), "一千零五" (1005),
    "twenty five", "a hundred and five", "two thousand twenty six". "两三" (two or three) is
    an estimate: None.
    """
    if _ZH_ESTIMATE.fullmatch(re.sub(r"\s+", "", normalize(text))):
        return None
    digits = spoken_digits(text)
    if digits is not None:
        return int(digits)
    folded = normalize(text)
    if not folded:
        return None
    return chinese_number(folded) if is_cjk(folded) else english_number(folded)


def chinese_number(text: str) -> int | None:
    """Reads a Chinese numeral (ASCII digit runs allowed in it: "3千5"), or None.

    Read like the numeral is spoken: 一亿 | 五千万 | 三百二十一 — each big unit closes the sections
    below it, so 万 scales only what came after the last 亿. A digit right after a unit without
    零 is the colloquial shorthand for the next lower unit: 两百五 is 250, 一万二 is 12000, while
    一千零五 is 1005.
    """
    tokens = _CN_TOKEN.findall(normalize(text))
    if not tokens:
        return None
    done, wan_part, section = 0, 0, 0
    pending: int | None = None
    last_unit, after_zero = 0, False
    for token in tokens:
        if token.isascii() and token.isdigit():
            if pending is not None:
                return None
            pending = int(token)
        elif token in _CN_ZEROS:
            # 零 only marks a gap between units ("一千零五"); a digit may not precede it.
            if pending is not None:
                return None
            after_zero = True
        elif token in _DIGIT_CHARS:
            if pending is not None:
                # Two digits in a row ("十五六") is an estimate, not a number.
                return None
            pending = int(_DIGIT_CHARS[token])
        elif token in _CN_UNITS:
            section += (1 if pending is None else pending) * _CN_UNITS[token]
            pending, last_unit, after_zero = None, _CN_UNITS[token], False
        elif token == "万":
            wan_part = (section + (pending or 0)) * _CN_BIG_UNITS[token]
            section, pending, last_unit, after_zero = 0, None, _CN_BIG_UNITS[token], False
        elif token == "亿":
            done = (done + wan_part + section + (pending or 0)) * _CN_BIG_UNITS[token]
            wan_part, section, pending = 0, 0, None
            last_unit, after_zero = _CN_BIG_UNITS[token], False
        else:
            return None
    if pending is not None and last_unit >= 100 and not after_zero:
        pending *= last_unit // 10
    return done + wan_part + section + (pending or 0)


def english_number(text: str) -> int | None:
    """Reads a whole number in English words ("twenty five", "a hundred and five"), or None.

    Digits may stand in for words ("5 hundred"). Sequences that are not one number ("five
    five", "twenty twenty") are rejected: read them with `spoken_digits` instead.
    """
    words = [word for word in _EN_SPLIT.split(normalize(text)) if word]
    total, current = 0, 0
    last = ""  # the kind of the previous word: unit | teen | tens | hundred | scale | and
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        if word == "and" and last in ("hundred", "scale") and following:
            last = "and"
            continue
        if (
            word in ("a", "an")
            and last in ("", "scale", "and")
            and following
            in (
                "hundred",
                *_EN_SCALES,
            )
        ):
            current, last = 1, "unit"
            continue
        if word.isascii() and word.isdigit() and last in ("", "hundred", "scale", "and"):
            current += int(word)
            last = "unit" if int(word) < 10 else "teen"
            continue
        if word in _EN_UNITS:
            value = _EN_UNITS[word]
            if last in ("", "hundred", "scale", "and") or (last == "tens" and 0 < value < 10):
                current += value
                last = "unit" if value < 10 else "teen"
                continue
            return None
        if word in _EN_TENS and last in ("", "hundred", "scale", "and"):
            current += _EN_TENS[word]
            last = "tens"
            continue
        if word == "hundred" and last in ("unit", "teen", "tens") and current:
            current *= 100
            last = "hundred"
            continue
        if word in _EN_SCALES and last in ("unit", "teen", "tens", "hundred"):
            total += current * _EN_SCALES[word]
            current, last = 0, "scale"
            continue
        return None
    if last in ("", "and"):
        return None
    return total + current


# The words and characters numbers are said with, for finding them inside a sentence:
# NUMBER_WORDS say a digit or a number themselves; NUMBER_JOINERS only join or mark them
# ("a hundred", "three point five", "seven oh five", "double five", "三点五").
NUMBER_WORDS = frozenset(
    {*_EN_UNITS, *_EN_TENS, *_EN_SCALES, "hundred", *_DIGIT_CHARS, *_CN_UNITS, *_CN_BIG_UNITS}
)
NUMBER_JOINERS = frozenset({"a", "an", "and", "point", "oh", "o", *_REPEATS, "点"})

_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
_SCALED_DECIMAL = re.compile(r"(?P<n>[0-9]+\.[0-9]+|[^点]+点[^点千万亿]+)(?P<u>[千万亿])")
_CN_SCALES = {"千": 1000, "万": 10_000, "亿": 100_000_000}


def spoken_decimal(text: str) -> Decimal | None:
    """Parses a non-negative number that may have a fractional part, or None.

    "3.5", "1,234.5", "三点五", "three point five", "twelve point zero five", "1.5万" (15000);
    whole numbers in any form `spoken_number` reads.
    """
    folded = normalize(text).replace(",", "").replace("，", "")
    compact = re.sub(r"\s+", "", folded)
    if _PLAIN_DECIMAL.fullmatch(compact):
        return Decimal(compact)
    if re.fullmatch(r"[0-9.]+", compact):
        return None  # "1.2.3" is no number (a digit string reads its dots as separators)
    scaled = _SCALED_DECIMAL.fullmatch(compact)
    if scaled:
        # "1.5万", "三点五万": a decimal counted in a big unit, as Chinese ASR writes amounts.
        counted = spoken_decimal(scaled["n"])
        return None if counted is None else counted * _CN_SCALES[scaled["u"]]
    whole, mark, fraction = folded.partition("点")
    if not mark:
        whole, mark, fraction = f" {folded} ".partition(" point ")
    if mark:
        integer = spoken_number(whole) if whole.strip() else 0
        decimals = spoken_digits(fraction)
        if integer is None or decimals is None:
            return None
        return Decimal(f"{integer}.{decimals}")
    number = spoken_number(folded)
    return None if number is None else Decimal(number)


# Hesitations a caller starts with before the answer itself ("嗯，不对", "呃，是的", "那个，不是"):
# skipped when more follows, so "嗯" alone is still a yes but "嗯，不对" is a no.
_FILLER = r"(?:嗯|呃|额|唔|啊|哦|那个|这个)[\s，,。.、…]*"
_LEADING_FILLERS = re.compile(rf"^(?:{_FILLER})+(?!(?:{_FILLER})*$)")


def yes_or_no(text: str) -> bool | None:
    """Returns True for an affirmative answer, False for a negative one, None otherwise.

    Hesitations in front ("嗯，", "呃") are skipped when more follows. Negative forms are tried
    first because most Chinese ones contain an affirmative ("不是" contains "是").
    """
    folded = _LEADING_FILLERS.sub("", normalize(text))
    words = set(_words(folded))
    if words & _NO_EN or any(folded.startswith(no) for no in _NO):
        return False
    if words & _YES_EN or any(folded.startswith(yes) for yes in _YES):
        return True
    return None


# A "no" that opens a correction: "不对，是六位", "错了是六位", "不是，六位", "no, it's 6", "nope 6".
# 不是 counts only when a break follows: in "不是五位" it negates the value, not the question.
_DENIAL = re.compile(
    r"(?:(?:不对|错了|不正确|不是(?=[\s，,。.!！?？;；、]|$)"
    r"|(?:nope|no|nah|wrong|incorrect|that'?s wrong|that is wrong|not right)(?![a-z0-9']))"
    r"[\s，,。.!！?？;；、]*)+"
)


def after_denial(text: str) -> str:
    """What follows a leading "no" in an answer ("不对，是六位" → "是六位", "no, it's 6" →
    "it's 6"), folded; the whole folded text when it starts with none."""
    folded = normalize(text)
    found = _DENIAL.match(folded)
    return folded[found.end() :] if found else folded


def unnegated_clauses(text: str) -> list[str]:
    """The clauses of text that hold no negation: of "不是五位，是六位" or "it's not 5, it's 6" only
    "是六位" and " it's 6" are left."""
    return [
        clause
        for clause in _CLAUSE_BREAK.split(normalize(text))
        if clause.strip()
        and not any(neg in clause for neg in _NEGATIONS_ZH)
        and not any(word in _NEGATIONS_EN or word.endswith("n't") for word in _words(clause))
    ]


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
