"""Unit tests of the text matchers: keywords, patterns, fuzzy matching, choosing among
candidates, synonyms, spoken digits and numbers (Chinese and English), yes/no, digit checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from server.engine.matching import (
    Candidate,
    DigitsCheck,
    Hit,
    after_denial,
    check_digits,
    chinese_number,
    english_number,
    expand,
    find_keyword,
    find_pattern,
    fuzzy_keyword,
    normalize,
    spoken_decimal,
    spoken_digits,
    spoken_key,
    spoken_number,
    understand,
    unnegated_clauses,
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


@pytest.mark.parametrize(
    "text", ["abc", "", "十二abc", "两百块", "twelve apples", "很多", "十五六", "five twenty five"]
)
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
    "text",
    ["不是", "不对", "不用了", "不要", "不行", "算了", "错了", "no", "Nope", "No thanks", "nah"],
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


# -- more spoken digits and numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("double five one", "551"),
        ("triple eight", "888"),
        ("four double two", "422"),
        ("幺三八-零零一三-八零零零", "13800138000"),
        ("１３８ ００１３ ８０００", "13800138000"),
        ("one-three-eight", "138"),
    ],
)
def test_spoken_digits_reads_repeats_dashes_and_full_width(text: str, expected: str) -> None:
    assert spoken_digits(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Chinese numerals, with the colloquial shorthand after a unit.
        ("两百五", 250),
        ("三千五", 3500),
        ("一万二", 12_000),
        ("一亿二", 120_000_000),
        ("一百一", 110),
        ("一千零五", 1005),
        ("一万零五百", 10_500),
        ("十五", 15),
        ("一十", 10),
        ("3千5", 3500),
        ("30万", 300_000),
        ("两百 五十", 250),
        # English words.
        ("twelve", 12),
        ("twenty five", 25),
        ("twenty-five", 25),
        ("Ninety Nine", 99),
        ("a hundred", 100),
        ("one hundred and five", 105),
        ("two thousand twenty six", 2026),
        ("three million two hundred thousand", 3_200_000),
        ("5 hundred", 500),
        ("zero", 0),
    ],
)
def test_spoken_number_reads_chinese_numerals_and_english_words(text: str, expected: int) -> None:
    assert spoken_number(text) == expected


@pytest.mark.parametrize("text", ["十五六", "两两", "十二个", "百万富翁", "五零"])
def test_chinese_number_rejects_what_is_not_one_numeral(text: str) -> None:
    assert chinese_number(text) is None


@pytest.mark.parametrize(
    "text", ["twenty twenty", "five five", "hundred", "and five", "one hundred and", "a", "fifty a"]
)
def test_english_number_rejects_sequences_that_are_not_one_number(text: str) -> None:
    assert english_number(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.5", Decimal("3.5")),
        ("1,234.50", Decimal("1234.50")),
        ("三点五", Decimal("3.5")),
        ("十二点零五", Decimal("12.05")),
        ("点五", Decimal("0.5")),
        ("three point five", Decimal("3.5")),
        ("twelve point zero five", Decimal("12.05")),
        ("两百五", Decimal(250)),
        ("twenty five", Decimal(25)),
    ],
)
def test_spoken_decimal_reads_fractions_in_every_form(text: str, expected: Decimal) -> None:
    assert spoken_decimal(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "三点", "three point", "1.2.3"])
def test_spoken_decimal_rejects_junk(text: str) -> None:
    assert spoken_decimal(text) is None


# -- patterns -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "patterns", "expected"),
    [
        ("我想查一下上个月的账单", ["查.{0,8}账单"], ("查.{0,8}账单", "查一下上个月的账单")),
        (
            "My order number is AB1234",
            [r"order (number|id)"],
            (r"order (number|id)", "order number"),
        ),
        # The longest match of all patterns wins.
        ("查账单", ["账单", "查账单"], ("查账单", "查账单")),
        ("今天天气不错", ["查.{0,8}账单"], None),
        # Negated matches do not count, as for keywords.
        ("我不要查账单", ["查.{0,4}账单"], None),
        ("not my order number", [r"order number"], None),
        ("不查账单，转人工", ["转人工"], ("转人工", "转人工")),
    ],
)
def test_find_pattern_searches_each_clause_and_respects_negation(
    text: str, patterns: list[str], expected: tuple[str, str] | None
) -> None:
    assert find_pattern(text, patterns) == expected


# -- fuzzy ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keywords", "threshold", "expected_keyword"),
    [
        # ASR slips in English words and phrases.
        ("I want to check my biling", ["billing"], 85, "billing"),
        ("get me an operater", ["operator"], 85, "operator"),
        ("a representitive please", ["representative"], 85, "representative"),
        ("talk to a persn", ["a person"], 80, "a person"),
        # Whole words are compared: "billion" scores 73 against "bill" (a substring would be 100).
        ("a billion dollars", ["bill"], 85, None),
        # Short keywords only match exactly.
        ("now", ["no"], 10, None),
        # Below the threshold: no match.
        ("dater", ["data plan"], 85, None),
        # Chinese phrases: one character off in a long phrase.
        ("我要办理流量加油宝", ["办理流量加油包"], 80, "办理流量加油包"),
        # A negated stretch does not count.
        ("I don't want the biling", ["billing"], 85, None),
    ],
)
def test_fuzzy_keyword_matches_similar_stretches_above_the_threshold(
    text: str, keywords: list[str], threshold: float, expected_keyword: str | None
) -> None:
    found = fuzzy_keyword(text, keywords, threshold)
    assert (found[0] if found else None) == expected_keyword
    if found:
        assert threshold <= found[2] < 100


def test_fuzzy_keyword_reports_what_was_said_and_the_score() -> None:
    assert fuzzy_keyword("check my biling please", ["billing"], 85) == (
        "billing",
        "biling",
        92.3,
    )


# -- understand: choosing among candidates ---------------------------------------------------------

_MENU = [
    Candidate(("话费", "账单", "bill")),  # 0
    Candidate(("流量", "data"), (r"\d+\s*gb",)),  # 1
    Candidate(("缴费", "bill payment")),  # 2
]


@pytest.mark.parametrize(
    ("text", "index", "how"),
    [
        ("我想查话费", 0, "keyword"),
        ("I need 5 GB more", 1, "pattern"),
        # The longest exact match wins across candidates.
        ("bill payment", 2, "keyword"),
        # An exact match wins over a closer fuzzy one.
        ("my bill paymnt", 0, "keyword"),
        ("data plann", 1, "keyword"),
    ],
)
def test_understand_picks_the_longest_exact_match(text: str, index: int, how: str) -> None:
    hit = understand(text, _MENU, fuzzy_threshold=85).hit
    assert hit is not None
    assert (hit.index, hit.how) == (index, how)


def test_understand_falls_back_to_fuzzy_only_when_nothing_matched_exactly() -> None:
    hit = understand("I'd like my bil paymet", _MENU, fuzzy_threshold=80).hit
    assert hit is not None
    assert (hit.index, hit.how, hit.term) == (2, "fuzzy", "bill payment")
    assert understand("I'd like my bil paymet", _MENU, fuzzy_threshold=0).hit is None


def test_understand_below_the_threshold_is_no_match() -> None:
    assert understand("今天天气不错", _MENU, fuzzy_threshold=85).hit is None
    assert understand("the weather is nice", _MENU, fuzzy_threshold=85).hit is None


def test_understand_ties_go_to_the_earlier_candidate_and_are_reported() -> None:
    found = understand("话费和流量", _MENU, fuzzy_threshold=85)
    assert found.hit is not None
    assert (found.hit.index, found.hit.term) == (0, "话费")
    assert [(tie.index, tie.term) for tie in found.ties] == [(1, "流量")]


def test_understand_ignores_negated_candidates() -> None:
    hit = understand("不要查话费，流量还剩多少", _MENU).hit
    assert hit is not None
    assert hit.index == 1


@pytest.mark.parametrize(
    ("how", "text"),
    [
        ("keyword", "keyword '话费'"),
        ("pattern", "pattern '\\d+gb' on '5gb'"),
        ("fuzzy", "fuzzy 'biling'~'billing' 92.3"),
    ],
)
def test_hits_describe_themselves_for_diagnostics(how: str, text: str) -> None:
    hits = {
        "keyword": Hit(0, "keyword", "话费", "话费", 2),
        "pattern": Hit(0, "pattern", "\\d+gb", "5gb", 3),
        "fuzzy": Hit(0, "fuzzy", "billing", "biling", 92.3),
    }
    assert hits[how].describe() == text


# -- synonyms ---------------------------------------------------------------------------------------


def test_expand_adds_every_synonym_of_each_keyword_once() -> None:
    group = ("话费", "电话费", "手机费")
    synonyms = {normalize(word): group for word in group}
    assert expand(("话费", "余额"), synonyms) == ("话费", "余额", "电话费", "手机费")
    assert expand(("电话费",), synonyms) == ("电话费", "话费", "手机费")
    assert expand(("流量",), synonyms) == ("流量",)


AGENT_ZH = ["人工", "客服", "转人工", "人工服务"]
AGENT_EN = ["agent", "operator", "representative", "a person", "human"]


@pytest.mark.parametrize(
    ("text", "keywords"),
    [
        # Regression (issue 17): the negation reaches over the words of a refusal.
        ("不要转接人工客服", AGENT_ZH),
        ("别给我转人工", AGENT_ZH),
        ("拒绝人工", AGENT_ZH),
        ("不需要人工服务", AGENT_ZH),
        ("我不想跟客服说话", AGENT_ZH),
        ("don't transfer me to an agent", AGENT_EN),
        ("I would rather not speak to a person", AGENT_EN),
        ("please do not connect me with a representative", AGENT_EN),
        ("I won't talk to a human", AGENT_EN),
    ],
)
def test_a_refusal_reaches_the_keyword_over_its_own_words(text: str, keywords: list[str]) -> None:
    assert find_keyword(text, keywords) is None


@pytest.mark.parametrize(
    "text",
    [
        "帮我转人工客服",
        "我不知道转人工",
        "不好意思转人工",
        "话费不对帮我转人工",
        "get me an agent",
        "I don't want the bill I want an agent",
        "I don't mind talking to an agent",
    ],
)
def test_a_negation_of_something_else_does_not_reach_the_keyword(text: str) -> None:
    assert find_keyword(text, [*AGENT_ZH, *AGENT_EN]) is not None


def test_a_refusal_also_stops_patterns() -> None:
    assert find_pattern("别给我找人工", ["找.{0,2}人工"]) is None
    assert find_pattern("帮我找个人工", ["找.{0,2}人工"]) is not None


@pytest.mark.parametrize(
    ("text", "rest"),
    [
        ("不对，是六位", "是六位"),
        ("错了是六位", "是六位"),
        ("不是，六位", "六位"),
        ("不是五位", "不是五位"),  # 不是 without a break negates the value, not the question
        ("No, it's 6", "it's 6"),
        ("nope nope seven", "seven"),
        ("nothing", "nothing"),
    ],
)
def test_after_denial_is_what_follows_a_leading_no(text: str, rest: str) -> None:
    assert after_denial(text) == rest


def test_unnegated_clauses_drop_the_negated_ones() -> None:
    assert unnegated_clauses("不是五位，是六位") == ["是六位"]
    assert unnegated_clauses("it's not 5, it's 6") == [" it's 6"]
    assert unnegated_clauses("isn't five. six") == [" six"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Regression (issue 17 QA): a hesitation in front decided the answer ("嗯，不对" was
        # yes, "呃，不对" and "那个，不是" no answer at all).
        ("嗯，不对", False),
        ("呃，不对", False),
        ("那个，不是", False),
        ("嗯嗯，不是", False),
        ("呃，是的", True),
        ("嗯", True),
        ("嗯嗯", True),
        ("嗯，我想想", None),
    ],
)
def test_yes_or_no_skips_a_hesitation_in_front(text: str, expected: bool | None) -> None:
    assert yes_or_no(text) is expected


@pytest.mark.parametrize("said", ["两三", "一两", "三四", "五六", "八九"])
def test_neighbouring_numerals_are_an_estimate_not_a_number(said: str) -> None:
    # Regression (issue 17 QA): "两三个" filled an integer slot with 23.
    assert spoken_number(said) is None
    assert spoken_digits(said) is not None  # a digits slot still reads them as digits


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("1.5万", Decimal("15000")),
        ("三点五万", Decimal("35000")),
        ("2.5千", Decimal("2500")),
    ],
)
def test_a_decimal_counted_in_a_big_unit(said: str, expected: Decimal) -> None:
    # Regression (issue 17 QA): "1.5万", as Chinese ASR writes it, was no amount.
    assert spoken_decimal(said) == expected


@pytest.mark.parametrize(
    "said", ["能不能转人工", "你们能不能帮我转一下人工客服", "要不要转人工", "好不好给我转人工"]
)
def test_a_question_of_yes_or_no_form_is_no_negation(said: str) -> None:
    # Regression (issue 17 QA): the 不 of "能不能" counted as a refusal of the agent.
    assert find_keyword(said, AGENT_ZH) is not None


@pytest.mark.parametrize("said", ["我不要不要人工", "别别别，不要人工", "不能转人工吗"])
def test_a_doubled_refusal_is_still_a_refusal(said: str) -> None:
    assert find_keyword(said, AGENT_ZH) is None


@pytest.mark.parametrize("said", ["I'm not asking for an agent", "I'm not looking for an operator"])
def test_asking_for_is_part_of_a_refusal(said: str) -> None:
    # Regression (issue 17 QA): "asking for" ended the reach of "not".
    assert find_keyword(said, ("agent", "operator")) is None


@pytest.mark.parametrize("said", ["我没说要人工", "我没要人工"])
def test_mei_negates_like_meiyou(said: str) -> None:
    # Regression (issue 17 QA): 没 alone was no negation, so "我没说要人工" transferred.
    assert find_keyword(said, AGENT_ZH) is None


@pytest.mark.parametrize("said", ["没错，转人工", "没问题转人工", "没听清，转人工"])
def test_mei_in_words_that_refuse_nothing(said: str) -> None:
    assert find_keyword(said, AGENT_ZH) is not None


@pytest.mark.parametrize(
    ("said", "keyword"), [("I never asked for a human", "human"), ("I never said agent", "agent")]
)
def test_asked_and_said_are_part_of_a_refusal(said: str, keyword: str) -> None:
    assert find_keyword(said, (keyword,)) is None


@pytest.mark.parametrize(
    ("said", "key"),
    [
        ("二", "2"),
        ("按二", "2"),
        ("请按二", "2"),
        ("我选2号", "2"),
        ("嗯，二吧", "2"),
        ("二号键", "2"),
        ("two", "2"),
        ("press two", "2"),
        ("option 2 please", "2"),
        ("number two please", "2"),
        ("I press 0", "0"),
    ],
)
def test_a_key_said_with_the_words_around_it(said: str, key: str) -> None:
    # Regression (issue 17 QA): only a bare digit counted as a key; "按二" was a no-match.
    assert spoken_key(said) == key


@pytest.mark.parametrize(
    "said", ["oh", "Oh.", "一二", "二十", "two tickets", "按一下", "one moment", "第二", ""]
)
def test_what_is_no_single_key(said: str) -> None:
    # "oh" alone used to be key 0, which reaches an agent at most menus.
    assert spoken_key(said) == ""
