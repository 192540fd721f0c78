"""Unit tests of the text matchers: keywords, spoken digits and numbers, yes/no, digit checks."""

from __future__ import annotations

import pytest

from server.engine.matching import (
    DigitsCheck,
    check_digits,
    find_keyword,
    normalize,
    spoken_digits,
    spoken_number,
    yes_or_no,
)

# -- normalize ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Bill  ", "bill"),
        ("ＢＩＬＬ", "bill"),
        ("１３８", "138"),
        ("话费", "话费"),
        ("Ａgent！", "agent!"),
        ("\t人工服务\n", "人工服务"),
        ("", ""),
    ],
)
def test_normalize_folds_width_and_case_and_trims(text: str, expected: str) -> None:
    assert normalize(text) == expected


# -- find_keyword ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keywords", "expected"),
    [
        # CJK keywords match as substrings anywhere in the utterance.
        ("我想查话费", ["话费"], "话费"),
        ("帮我查一下余额吧", ["话费", "余额"], "余额"),
        ("我要人工", ["人工"], "人工"),
        # Latin keywords match whole words only, in any case.
        ("I want my bill please", ["bill"], "bill"),
        ("BILL", ["bill"], "bill"),
        ("Agent!", ["agent"], "agent"),
        ("a billion dollars", ["bill"], None),
        ("billing question", ["bill"], None),
        ("please talk to a person", ["a person"], "a person"),
        ("apersonal matter", ["a person"], None),
        # Full-width input is folded first.
        ("我要ＡＧＥＮＴ", ["agent"], "agent"),
        ("ＢＩＬＬ please", ["bill"], "bill"),
        # Nothing said that matches.
        ("今天天气不错", ["话费", "流量"], None),
        ("", ["bill"], None),
        ("bill", [], None),
        ("bill", [""], None),
    ],
)
def test_find_keyword_matches_cjk_as_substring_and_latin_as_whole_word(
    text: str, keywords: list[str], expected: str | None
) -> None:
    assert find_keyword(text, keywords) == expected


@pytest.mark.parametrize(
    ("text", "keywords", "expected"),
    [
        ("我想要人工服务", ["人工", "人工服务"], "人工服务"),
        ("我想要人工服务", ["人工服务", "人工"], "人工服务"),
        ("I want my bill", ["bill", "my bill"], "my bill"),
        ("say that again", ["again", "say that again"], "say that again"),
        # Equal length: the earlier keyword wins.
        ("话费和流量", ["流量", "话费"], "流量"),
        ("bill data", ["data", "bill"], "data"),
    ],
)
def test_find_keyword_returns_longest_keyword_and_earlier_one_on_a_tie(
    text: str, keywords: list[str], expected: str
) -> None:
    assert find_keyword(text, keywords) == expected


@pytest.mark.parametrize(
    ("text", "keywords"),
    [
        ("不要人工", ["人工"]),
        ("我不要人工", ["人工", "转人工"]),
        ("别转人工", ["人工", "转人工"]),
        ("不用人工", ["人工"]),
        ("不想查话费", ["话费"]),
        ("not the bill", ["bill"]),
        ("I don't want an agent", ["agent"]),
        ("I do not want an agent", ["agent"]),
        ("never the operator", ["operator"]),
        ("without an agent", ["agent"]),
    ],
)
def test_find_keyword_ignores_negated_keyword(text: str, keywords: list[str]) -> None:
    assert find_keyword(text, keywords) is None


@pytest.mark.parametrize(
    ("text", "keywords", "expected"),
    [
        # The negation stays in its clause: the keyword after the break counts.
        ("我不查话费，我要人工", ["话费", "人工"], "人工"),
        ("我不知道，转人工", ["人工"], "人工"),
        ("not the bill, the data plan", ["bill", "data"], "data"),
        ("no. agent please", ["agent"], "agent"),
        # A negated and a plain occurrence in one clause: the plain one counts.
        ("不要话费 要人工", ["人工", "话费"], "人工"),
        ("I need my bill not an agent", ["bill", "agent"], "bill"),
        # A negation far before the keyword (beyond the window) does not bind to it.
        ("我不知道怎么办我要人工", ["人工"], "人工"),
        ("no I mean we really want the bill", ["bill"], "bill"),
    ],
)
def test_find_keyword_negation_does_not_cross_clause_or_window(
    text: str, keywords: list[str], expected: str
) -> None:
    assert find_keyword(text, keywords) == expected


def test_find_keyword_recognises_negation_with_typographic_apostrophe() -> None:
    assert find_keyword("I don\u2019t want an agent", ["agent"]) is None


# -- spoken_digits --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("幺三八 零零一三 八零零零", "13800138000"),
        ("一二三四", "1234"),
        ("两洞拐勾", "2079"),
        ("壹贰叁", "123"),
        ("one three eight", "138"),
        ("Zero Nine", "09"),
        ("oh one", "01"),
        ("１３８００１３８０００", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("(010) 1234.5678", "01012345678"),
        ("5", "5"),
    ],
)
def test_spoken_digits_reads_chinese_english_full_width_and_separated_digits(
    text: str, expected: str
) -> None:
    assert spoken_digits(text) == expected


@pytest.mark.parametrize("text", ["abc", "", "   ", "12a", "一百", "one hundred", "١٢٣", "--"])
def test_spoken_digits_rejects_what_is_not_a_digit_string(text: str) -> None:
    assert spoken_digits(text) is None


# -- spoken_number --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("两百五十", 250),
        ("十二", 12),
        ("十", 10),
        ("二十", 20),
        ("一万零五", 10_005),
        ("一千零一", 1001),
        ("两万三千", 23_000),
        ("三十万", 300_000),
        ("五", 5),
        ("42", 42),
        ("４２", 42),
        ("一二三", 123),
        ("three", 3),
    ],
)
def test_spoken_number_parses_digits_and_chinese_numerals(text: str, expected: int) -> None:
    assert spoken_number(text) == expected


@pytest.mark.parametrize("text", ["abc", "", "十二abc", "两百块", "twelve", "很多"])
def test_spoken_number_rejects_junk(text: str) -> None:
    assert spoken_number(text) is None


def test_spoken_number_scales_wan_section_after_yi() -> None:
    assert spoken_number("一亿五千万") == 150_000_000


# -- yes_or_no ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["是的", "是", "对", "对的", "好的", "可以", "嗯", "没错", "yes", "Yeah", "Yes.", "sure"],
)
def test_yes_or_no_recognises_affirmatives(text: str) -> None:
    assert yes_or_no(text) is True


@pytest.mark.parametrize(
    "text", ["不是", "不对", "不用了", "不要", "不行", "算了", "no", "Nope", "No thanks", "nah"]
)
def test_yes_or_no_recognises_negatives_even_when_they_contain_an_affirmative(text: str) -> None:
    assert yes_or_no(text) is False


@pytest.mark.parametrize("text", ["今天天气怎么样", "hello", "", "我要查话费", "maybe later"])
def test_yes_or_no_returns_none_for_unrelated_answers(text: str) -> None:
    assert yes_or_no(text) is None


# -- check_digits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "low", "high", "pattern", "expected"),
    [
        ("123", 1, 3, "", DigitsCheck("123")),
        ("1", 1, 3, "", DigitsCheck("1")),
        ("13800138000", 11, 11, r"1[3-9][0-9]{9}", DigitsCheck("13800138000")),
        ("1234", 1, 3, "", DigitsCheck(None, "4 digits, expected 1-3")),
        ("", 1, 3, "", DigitsCheck(None, "0 digits, expected 1-3")),
        ("12", 3, 5, "", DigitsCheck(None, "2 digits, expected 3-5")),
        (
            "23800138000",
            11,
            11,
            r"1[3-9][0-9]{9}",
            DigitsCheck(None, "does not match 1[3-9][0-9]{9}"),
        ),
        # The pattern must match the whole string, not a prefix.
        ("123", 1, 3, r"1[0-9]", DigitsCheck(None, "does not match 1[0-9]")),
    ],
)
def test_check_digits_validates_length_then_full_pattern(
    digits: str, low: int, high: int, pattern: str, expected: DigitsCheck
) -> None:
    assert check_digits(digits, low, high, pattern) == expected
