"""Built-in slot types: what a collect node accepts, how it is normalised, and why not.

Pure: a collect node, the caller's keys or words, and (for dates) the call's date in the flow's
time zone go in; the slot's text or the reason it was rejected comes out. Stored forms are
canonical, so branch conditions and fulfillment services see one spelling:

| type      | stored as                        | e.g. said                                   |
|-----------|----------------------------------|---------------------------------------------|
| digits    | the digits                       | 幺三八 零零一三 八零零零 → 13800138000           |
| number    | a whole number ≥ 0               | 两百五 → 250                                  |
| integer   | a whole number, maybe negative   | 负五 → -5, minus twelve → -12                |
| amount    | a decimal with two places        | 三块五 → 3.50, three dollars fifty → 3.50    |
| mobile_cn | 11 digits, 1[3-9]…               | +86 138 0013 8000 → 13800138000             |
| e164      | + and 8-15 digits                | plus one four one five … → +14155550100     |
| date      | YYYY-MM-DD                       | 下周一, next monday                           |
| time      | HH:MM (24 h)                     | 下午三点半 → 15:30                             |
| yes_no    | yes / no                         | 对的, nope                                    |
| choice    | the option's value               | 大杯 → large                                  |
| regex     | the match (or group "value")     | 订单号AB1234 → AB1234 (see `_regex`)          |
| text      | the words, trimmed               |                                             |

Numbers and phone numbers are also found inside a sentence ("我的号码是…", "大概一千块吧", "I want
two tickets please"): see `_in_sentence`. `read_confirmation` reads the answer to a read-back,
with a new value said in the same breath ("不对，是六位").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from server.engine import extraction, matching
from server.engine import languages as spoken_languages
from server.engine.dates import parse_date, parse_time
from server.engine.flow import Collect, Option, SlotType

_MOBILE_CN = re.compile(r"^1[3-9][0-9]{9}$")
_CN_COUNTRY_PREFIX = re.compile(r"^(?:\+|00)?86(?=1[3-9][0-9]{9}$)")
_PLUS_WORDS = re.compile(r"^\s*(?:\+|plus\b|加)\s*")
_NEGATIVE = re.compile(r"^\s*(?:-|−|负|零下|minus\b|negative\b)\s*")
_CENT = Decimal("0.01")
_KEYED_ANSWERS = {"1": True, "2": False}  # yes/no on a keypad, as confirmations ask for them

# Units of money, in their main unit (元 / dollar).
_ZH_MONEY_UNITS = {"元": Decimal(1), "块": Decimal(1), "圆": Decimal(1), "毛": Decimal("0.1"),
                   "角": Decimal("0.1"), "分": Decimal("0.01")}  # fmt: skip
_ZH_MONEY_SPLIT = re.compile(r"(元|块|圆|毛|角|分)")
_EN_MAIN = ("dollars", "dollar", "bucks", "buck", "yuan", "rmb", "euros", "euro", "pounds", "pound")
_EN_CENTS = ("cents", "cent", "pence", "penny")


@dataclass(frozen=True, slots=True)
class SlotCheck:
    """The slot's text when the input was accepted, else None and what was wrong.

    `language` is the declared language the answer was said in when it is not the first one
    tried (a `choice` option's keywords of another language), else "".
    """

    value: str | None
    problem: str = ""
    language: str = ""


def parse_slot(
    node: Collect,
    *,
    text: str = "",
    key: str = "",
    today: date | None = None,
    synonyms: Mapping[str, tuple[str, ...]] | None = None,
    fuzzy_threshold: float = 0,
    languages: Sequence[str] = (),
) -> SlotCheck:
    """Reads a collect node's answer: keys pressed (`key`) or words said (`text`).

    Args:
        node: The collect node; its slot type and validators decide.
        text: What the caller said (when no keys).
        key: The keys pressed.
        today: The call's date in the flow's time zone; relative dates need it.
        synonyms: The flow's synonym groups, for `choice` options.
        fuzzy_threshold: Fuzzy matching threshold for `choice` options (0: exact only).
        languages: The languages to try `choice` keywords in, the call's first (empty: the
            keywords of every language at once). Numbers, dates, times and yes/no are read by
            the script they are said in (Chinese or Latin), so every language is understood.
    """
    said = key or text
    kind = node.slot_type
    if kind is SlotType.YES_NO:
        answer = _KEYED_ANSWERS.get(key) if key else matching.yes_or_no(text)
        if answer is None:
            return SlotCheck(None, f"'{said}' is neither yes nor no")
        return SlotCheck("yes" if answer else "no")
    if kind is SlotType.TEXT:
        value = said.strip()
        return SlotCheck(value) if value else SlotCheck(None, "empty")
    if key:
        keyed = _KEY_READERS.get(kind)
        if keyed is not None:
            return keyed(node, key)
    reader = _SPEECH_READERS.get(kind)
    if reader is not None:
        return _in_sentence(node, text, reader)
    if kind is SlotType.DATE:
        return _date(key=key, text=text, today=today)
    if kind is SlotType.TIME:
        return _time(key=key, text=text)
    if kind is SlotType.CHOICE:
        return _choice(
            node,
            key=key,
            text=text,
            synonyms=synonyms or {},
            fuzzy=fuzzy_threshold,
            languages=languages,
        )
    return _regex(node, said)


@dataclass(frozen=True, slots=True)
class ConfirmationReply:
    """A caller's answer to a read-back ("您说的是五位，对吗？") and a new value said with a no.

    Attributes:
        answer: True for yes, False for no, None for neither.
        correction: With a no, the slot's new value said in the same breath ("不对，是六位",
            "no, it's 6"), as `parse_slot` stores it; None when none was said or accepted.
        problem: Why words said with the no were not taken as a new value ("" if none).
    """

    answer: bool | None
    correction: str | None = None
    problem: str = ""


# The slot types whose answers are no value to correct with: any words are text, and a
# yes/no being confirmed is answered by the confirmation itself.
_UNCORRECTABLE = frozenset({SlotType.TEXT, SlotType.YES_NO})


def read_confirmation(
    node: Collect,
    *,
    text: str = "",
    key: str = "",
    today: date | None = None,
    synonyms: Mapping[str, tuple[str, ...]] | None = None,
    fuzzy_threshold: float = 0,
    languages: Sequence[str] = (),
) -> ConfirmationReply:
    """Reads the answer to a collect node's `confirm:` question: keys 1 (yes) / 2 (no), or
    speech as for `yes_no`; with a spoken no, the rest of the utterance is read as the slot's
    new value ("不对，是六位" → no, 6; "it's not 5, it's 6" → no, 6). Clauses with a negation
    ("不是五位") give no value, and an ambiguous or invalid one is none: the caller is asked
    again. Arguments as for `parse_slot`."""
    if key:
        return ConfirmationReply(_KEYED_ANSWERS.get(key))
    answer = matching.yes_or_no(text)
    if answer is not False or node.slot_type in _UNCORRECTABLE:
        return ConfirmationReply(answer)
    said = "，".join(matching.unnegated_clauses(matching.after_denial(text)))
    if not said:
        return ConfirmationReply(False)
    check = parse_slot(
        node,
        text=said,
        today=today,
        synonyms=synonyms,
        fuzzy_threshold=fuzzy_threshold,
        languages=languages,
    )
    return ConfirmationReply(False, check.value, check.problem)


def _digits_check(node: Collect, digits: str) -> SlotCheck:
    check = matching.check_digits(digits, node.min_length, node.max_length, node.pattern)
    return SlotCheck(check.value, check.problem)


def _bounded(node: Collect, number: Decimal, said: str) -> str:
    """ "" when number is within the node's min/max, else what is wrong."""
    if node.min_value is not None and number < node.min_value:
        return f"'{said}' is {number}, below the minimum {node.min_value}"
    if node.max_value is not None and number > node.max_value:
        return f"'{said}' is {number}, above the maximum {node.max_value}"
    return ""


# Hesitations a caller makes in the middle of a digit string ("幺三八，嗯，零零幺三…", "four one
# five, uh, five five five …"): skipped by the digit-string readers, whose values never hold a
# word (a number or an amount with one is two values).
_HESITATIONS = re.compile(r"嗯|呃|额|\b(?:um+|uh+|er+|erm)\b")
_HESITATION_WORDS = frozenset({"嗯", "呃", "额", "um", "umm", "uh", "uhh", "er", "err", "erm"})


def _read_digits(node: Collect, said: str) -> SlotCheck | None:
    digits = matching.spoken_digits(_HESITATIONS.sub(" ", said))
    return None if digits is None else _digits_check(node, digits)


def _read_number(node: Collect, said: str) -> SlotCheck | None:
    number = matching.spoken_number(said)
    return None if number is None else _digits_check(node, str(number))


def _read_integer(node: Collect, said: str) -> SlotCheck | None:
    sign = _NEGATIVE.match(matching.normalize(said))
    rest = matching.normalize(said)[sign.end() :] if sign else said
    number = matching.spoken_number(rest)
    if number is None:
        return None
    value = -number if sign else number
    problem = _bounded(node, Decimal(value), said)
    return SlotCheck(None, problem) if problem else SlotCheck(str(value))


def amount_of(text: str) -> Decimal | None:
    """Money as said: "三块五" 3.5, "十二元三角四分" 12.34, "五毛" 0.5, "$3.50", "three dollars
    fifty", "fifty cents", or a plain number in the main unit ("3.5", "三百"); else None."""
    folded = matching.normalize(text)
    folded = re.sub(
        r"^[¥$€£]|^(?:rmb|usd|cny)\s*", "", folded.replace("钱", "").replace("人民币", "").strip()
    )
    folded = re.sub(r"\s+", " ", folded).strip()
    if not folded:
        return None
    if matching.is_cjk(folded):
        return _zh_amount(folded.replace(" ", ""))
    return _en_amount(folded)


def _zh_amount(text: str) -> Decimal | None:
    # "三块五": a number after the last unit is in the next smaller unit (五 = 五毛).
    parts = _ZH_MONEY_SPLIT.split(text.replace("块半", "块五").replace("元半", "元五"))
    total, unit, used = Decimal(0), None, False
    for index in range(0, len(parts), 2):
        number_text = parts[index]
        next_unit = parts[index + 1] if index + 1 < len(parts) else None
        if not number_text:
            if next_unit is not None:
                return None  # a unit without its number ("块五", "三块毛")
            continue
        number = matching.spoken_decimal(number_text)
        if number is None:
            return None
        if next_unit is not None:
            scale = _ZH_MONEY_UNITS[next_unit]
        elif unit is None:
            scale = Decimal(1)
        elif number >= 10 or number != number.to_integral_value():
            return None  # the shorthand after a unit is one digit ("三块五", never "三块五一")
        else:
            scale = unit / 10
        if unit is not None and scale >= unit:
            return None  # units must go down: 元, then 角/毛, then 分
        total += number * scale
        unit, used = scale, True
    return total if used else None


def _en_amount(text: str) -> Decimal | None:
    words = re.split(r"\s+", text.replace("-", " "))
    main_at = next((i for i, word in enumerate(words) if word in _EN_MAIN), None)
    cents_at = next((i for i, word in enumerate(words) if word in _EN_CENTS), None)
    if main_at is None and cents_at is None:
        return matching.spoken_decimal(text)
    total = Decimal(0)
    if main_at is not None:
        said_main = " ".join(words[:main_at])
        # "a dollar fifty", "a buck": one of the main unit.
        main = Decimal(1) if said_main in ("a", "one") else matching.spoken_decimal(said_main)
        if main is None:
            return None
        total += main
        rest = [word for word in words[main_at + 1 : cents_at] if word != "and"]
        if rest:
            # "three dollars fifty": the number after the unit is cents.
            cents = matching.spoken_number(" ".join(rest))
            if cents is None or cents >= 100:
                return None
            total += Decimal(cents) / 100
        elif cents_at is not None:
            return None
        return total
    assert cents_at is not None
    cents = matching.spoken_number(" ".join(words[:cents_at]))
    if cents is None or cents_at != len(words) - 1:
        return None
    return Decimal(cents) / 100


def _keyed_amount(node: Collect, key: str) -> SlotCheck:
    # On a keypad '*' is the decimal point (unless it ends the entry: then it never gets here).
    whole, _, fraction = key.partition("*")
    try:
        amount = Decimal(f"{whole or '0'}.{fraction or '0'}")
    except InvalidOperation:
        return SlotCheck(None, f"'{key}' is not an amount")
    return _amount_check(node, amount, key)


def _read_amount(node: Collect, said: str) -> SlotCheck | None:
    amount = amount_of(said)
    return None if amount is None else _amount_check(node, amount, said)


def _amount_check(node: Collect, amount: Decimal, said: str) -> SlotCheck:
    try:
        amount = amount.quantize(_CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than decimal arithmetic holds: no amount anyone owes
        return SlotCheck(None, f"'{said}' is too large an amount")
    problem = _bounded(node, amount, said)
    return SlotCheck(None, problem) if problem else SlotCheck(str(amount))


def _read_mobile_cn(node: Collect, said: str) -> SlotCheck | None:
    said = _HESITATIONS.sub(" ", matching.normalize(said))
    plus = _PLUS_WORDS.match(matching.normalize(said))
    rest = matching.normalize(said)[plus.end() :] if plus else said
    digits = matching.spoken_digits(rest)
    if digits is None:
        return None
    digits = _CN_COUNTRY_PREFIX.sub("", ("+" if plus else "") + digits).lstrip("+")
    if not _MOBILE_CN.match(digits):
        return SlotCheck(None, f"'{digits}' is not a Chinese mobile number (11 digits, 1[3-9]...)")
    return SlotCheck(digits)


def _read_e164(node: Collect, said: str) -> SlotCheck | None:
    said = _HESITATIONS.sub(" ", matching.normalize(said))
    plus_word = _PLUS_WORDS.match(matching.normalize(said))
    rest = matching.normalize(said)[plus_word.end() :] if plus_word else said
    digits = matching.spoken_digits(rest)
    if digits is None:
        return None
    international = plus_word is not None
    if not international and digits.startswith("00"):
        digits, international = digits[2:], True  # the international prefix most countries dial
    if not international:
        if not node.country_code:
            return SlotCheck(None, f"'{said}' has no country code (expected +CC...)")
        # A national number: drop the trunk prefix 0 and put the country code in front.
        digits = node.country_code + digits.removeprefix("0")
    if not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return SlotCheck(None, f"'+{digits}' is not an E.164 number (+, then 8-15 digits)")
    return SlotCheck("+" + digits)


_Reader = Callable[[Collect, str], SlotCheck | None]

# Speech readers: a SlotCheck (valid or not) for what they understand as a value, else None.
_SPEECH_READERS: dict[SlotType, _Reader] = {
    SlotType.DIGITS: _read_digits,
    SlotType.NUMBER: _read_number,
    SlotType.INTEGER: _read_integer,
    SlotType.AMOUNT: _read_amount,
    SlotType.MOBILE_CN: _read_mobile_cn,
    SlotType.E164: _read_e164,
}
_NOT_UNDERSTOOD = {
    SlotType.DIGITS: "is not digits",
    SlotType.NUMBER: "is not a number",
    SlotType.INTEGER: "is not a whole number",
    SlotType.AMOUNT: "is not an amount",
    SlotType.MOBILE_CN: "is not a phone number",
    SlotType.E164: "is not a phone number",
}


def _keyed(reader: _Reader) -> Callable[[Collect, str], SlotCheck]:
    def read(node: Collect, key: str) -> SlotCheck:
        check = reader(node, key)
        return check or SlotCheck(None, f"'{key}' {_NOT_UNDERSTOOD[node.slot_type]}")

    return read


# Keys are the value itself (never searched): digits as pressed, '*' as an amount's point.
_KEY_READERS: dict[SlotType, Callable[[Collect, str], SlotCheck]] = {
    **{kind: _keyed(reader) for kind, reader in _SPEECH_READERS.items()},
    SlotType.AMOUNT: _keyed_amount,
}
# What joins the numbers of a value in a sentence besides number words, by slot type.
_SIGNS = frozenset({"负", "下", "minus", "negative"})  # 下 of 零下 ("零下五度" is -5)
_PLUS = frozenset({"加", "plus"})
_JOINERS: dict[SlotType, frozenset[str]] = {
    SlotType.DIGITS: _HESITATION_WORDS,
    SlotType.INTEGER: _SIGNS,
    SlotType.AMOUNT: frozenset({*_ZH_MONEY_UNITS, "钱", "半", *_EN_MAIN, *_EN_CENTS}),
    SlotType.MOBILE_CN: _PLUS | _HESITATION_WORDS,
    SlotType.E164: _PLUS | _HESITATION_WORDS,
}


def _in_sentence(node: Collect, text: str, reader: _Reader) -> SlotCheck:
    """The value said alone, or the one valid value inside a sentence ("我的号码是…", "I want two
    tickets please"). Several different valid values are ambiguous: none is taken (the caller
    is asked again rather than guessed for); a value understood but invalid gives its reason."""
    whole = reader(node, text)
    if whole is not None and whole.value is not None:
        return whole
    joiners = _JOINERS.get(node.slot_type, frozenset())
    found = extraction.readings(
        text,
        lambda stretch: reader(node, stretch),
        joiners,
        counts=node.slot_type is not SlotType.AMOUNT,
    )
    valid = list(dict.fromkeys(check.value for check in found if check.value is not None))
    if len(valid) == 1:
        return SlotCheck(valid[0])
    if valid:
        return SlotCheck(None, f"'{text}' holds more than one answer ({', '.join(valid)})")
    if whole is not None:
        return whole
    if found:
        return found[0]
    return SlotCheck(None, f"'{text}' {_NOT_UNDERSTOOD[node.slot_type]}")


def _date(*, key: str, text: str, today: date | None) -> SlotCheck:
    if today is None:
        return SlotCheck(None, "the call's date is unknown (no occurred_at)")
    if key:
        # Keys: YYYYMMDD, or MMDD for the next such date.
        text = (
            f"{key[:4]}-{key[4:6]}-{key[6:]}"
            if len(key) == 8
            else f"{int(key[:2])}月{int(key[2:])}日"
            if len(key) == 4 and key.isdigit()
            else ""
        )
    found = parse_date(text, today) if text else None
    if found is None:
        return SlotCheck(None, f"'{key or text}' is not a date")
    return SlotCheck(found.isoformat())


def _time(*, key: str, text: str) -> SlotCheck:
    if key:
        # Keys: HHMM or HMM, 24 hours.
        text = f"{key[:-2]}:{key[-2:]}" if len(key) in (3, 4) and key.isdigit() else ""
    found = parse_time(text) if text else None
    if found is None:
        return SlotCheck(None, f"'{key or text}' is not a time of day")
    return SlotCheck(found.strftime("%H:%M"))


def _choice(
    node: Collect,
    *,
    key: str,
    text: str,
    synonyms: Mapping[str, tuple[str, ...]],
    fuzzy: float,
    languages: Sequence[str],
) -> SlotCheck:
    if key:
        option = next((o for o in node.options if o.key and o.key == key), None)
        if option is None:
            return SlotCheck(None, f"key '{key}' picks no option")
        return SlotCheck(option.value)

    def candidates(language: str, first: bool) -> list[matching.Candidate]:
        return [
            matching.Candidate(
                matching.expand(
                    (
                        *((option.value,) if first and _value_is_said(option) else ()),
                        *(
                            spoken_languages.keywords_in(option, language, first=first)
                            if languages
                            else option.keywords
                        ),
                    ),
                    synonyms,
                ),
                option.patterns if first else (),
            )
            for option in node.options
        ]

    understood, language = spoken_languages.understand(
        text, languages or ("",), candidates, fuzzy_threshold=fuzzy
    )
    found = understood.hit
    if found is None:
        return SlotCheck(None, f"'{text}' matches no option")
    return SlotCheck(node.options[found.index].value, language=language)


def _value_is_said(option: Option) -> bool:
    """A `choice` option's value is one of its words, in every language, unless its keywords
    are given per language: then it is only what is stored ("large" in a Chinese call)."""
    return not option.keywords_by_language


def _regex(node: Collect, said: str) -> SlotCheck:
    """Searches the answer for the pattern: width-folded as said, then without spaces (ASR
    often splits codes: "AB 1234"). Case is kept: write `(?i)` for either case.

    Stores the named group "value" if the pattern has one and it matched, else the whole match.
    """
    folded = unicodedata.normalize("NFKC", said).strip()
    for candidate in (folded, re.sub(r"\s+", "", folded)):
        found = re.search(node.pattern, candidate)
        if found is not None:
            value = found.groupdict().get("value") or found.group(0)
            if value:
                return SlotCheck(value)
    return SlotCheck(None, f"'{said}' does not match {node.pattern}")
