"""Unit tests of the built-in slot types: what each accepts (keys and speech, Chinese and
English), the canonical text it stores, and the reason it gives for what it rejects."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from server.engine.flow import Collect, Option, PromptSpec, SlotType
from server.engine.matching import normalize
from server.engine.slots import (
    ConfirmationReply,
    SlotCheck,
    amount_of,
    parse_slot,
    read_confirmation,
)

TODAY = date(2026, 3, 4)  # a Wednesday


def node(slot_type: SlotType, **fields: Any) -> Collect:
    return Collect("ask", PromptSpec(), "value", slot_type, "next", **fields)


def accepted(collect: Collect, *, text: str = "", key: str = "", **kwargs: Any) -> str | None:
    return parse_slot(collect, text=text, key=key, today=TODAY, **kwargs).value


# -- integer --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("42", "42"),
        ("四十二", "42"),
        ("两百五", "250"),
        ("forty two", "42"),
        ("负五", "-5"),
        ("minus twelve", "-12"),
        ("-7", "-7"),
        ("零", "0"),
    ],
)
def test_integer_reads_words_and_signs(said: str, expected: str) -> None:
    assert accepted(node(SlotType.INTEGER), text=said) == expected


def test_integer_keys_are_the_number() -> None:
    assert accepted(node(SlotType.INTEGER), key="0042") == "42"


@pytest.mark.parametrize(
    ("said", "problem"),
    [
        ("很多", "is not a whole number"),
        ("three and a half", "is not a whole number"),
        ("十一", "above the maximum 10"),
        ("负一", "below the minimum 0"),
    ],
)
def test_integer_rejects_non_numbers_and_values_out_of_bounds(said: str, problem: str) -> None:
    check = parse_slot(
        node(SlotType.INTEGER, min_value=Decimal(0), max_value=Decimal(10)), text=said
    )
    assert check.value is None
    assert problem in check.problem


# -- amount ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("三块五", "3.50"),
        ("三块五毛二", "3.52"),
        ("三块半", "3.50"),
        ("十二元三角四分", "12.34"),
        ("三块零五分", "3.05"),
        ("五毛", "0.50"),
        ("两块钱", "2.00"),
        ("一百二十块", "120.00"),
        ("3.5元", "3.50"),
        ("三点五元", "3.50"),
        ("￥88", "88.00"),
        ("三百", "300.00"),
        ("three dollars fifty", "3.50"),
        ("three dollars and fifty cents", "3.50"),
        ("fifty cents", "0.50"),
        ("$3.50", "3.50"),
        ("12 dollars", "12.00"),
        ("twelve point five dollars", "12.50"),
        ("one hundred and twenty bucks", "120.00"),
        ("3.456", "3.46"),
    ],
)
def test_amount_reads_yuan_jiao_fen_and_dollars_cents(said: str, expected: str) -> None:
    assert accepted(node(SlotType.AMOUNT), text=said) == expected


@pytest.mark.parametrize(
    "said", ["很多钱", "块五", "三毛五块", "fifty cents three", "three dollars two hundred", ""]
)
def test_amount_rejects_what_is_not_money(said: str) -> None:
    check = parse_slot(node(SlotType.AMOUNT), text=said)
    assert check.value is None


@pytest.mark.parametrize(
    ("keys", "expected"), [("350", "350.00"), ("3*50", "3.50"), ("*5", "0.50")]
)
def test_amount_keys_use_star_as_the_decimal_point(keys: str, expected: str) -> None:
    assert accepted(node(SlotType.AMOUNT), key=keys) == expected


def test_amount_bounds_are_checked_on_the_amount() -> None:
    bounded = node(SlotType.AMOUNT, min_value=Decimal("0.01"), max_value=Decimal(500))
    assert accepted(bounded, text="五百块") == "500.00"
    assert "above the maximum 500" in parse_slot(bounded, text="五百零一块").problem


def test_amount_of_is_none_for_blank() -> None:
    assert amount_of("  ") is None


# -- mobile_cn and e164 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "said",
    [
        "13800138000",
        "幺三八 零零一三 八零零零",
        "138-0013-8000",
        "+86 138 0013 8000",
        "8613800138000",
        "008613800138000",
        "加八六 幺三八零零幺三八零零零",
        "one three eight double zero one three eight triple zero",
    ],
)
def test_mobile_cn_accepts_the_eleven_digits_with_or_without_country_code(said: str) -> None:
    assert accepted(node(SlotType.MOBILE_CN), text=said) == "13800138000"


@pytest.mark.parametrize(
    ("said", "problem"),
    [
        ("12800138000", "is not a Chinese mobile number"),
        ("1380013800", "is not a Chinese mobile number"),
        ("010 1234 5678", "is not a Chinese mobile number"),
        ("我的号码", "is not a phone number"),
    ],
)
def test_mobile_cn_rejects_other_numbers(said: str, problem: str) -> None:
    check = parse_slot(node(SlotType.MOBILE_CN), text=said)
    assert check.value is None
    assert problem in check.problem


@pytest.mark.parametrize(
    ("said", "country_code", "expected"),
    [
        ("+1 415 555 0100", "", "+14155550100"),
        ("plus one four one five five five five zero one zero zero", "", "+14155550100"),
        ("0044 20 7946 0958", "", "+442079460958"),
        ("加八六 138 0013 8000", "", "+8613800138000"),
        ("13800138000", "86", "+8613800138000"),
        ("010 1234 5678", "86", "+861012345678"),
    ],
)
def test_e164_accepts_international_and_national_numbers(
    said: str, country_code: str, expected: str
) -> None:
    assert accepted(node(SlotType.E164, country_code=country_code), text=said) == expected


@pytest.mark.parametrize(
    ("said", "problem"),
    [
        ("13800138000", "has no country code"),
        ("+1 415", "is not an E.164 number"),
        ("+1234567890123456", "is not an E.164 number"),
    ],
)
def test_e164_rejects_numbers_without_country_or_of_the_wrong_length(
    said: str, problem: str
) -> None:
    check = parse_slot(node(SlotType.E164), text=said)
    assert check.value is None
    assert problem in check.problem


# -- date and time --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("明天", "2026-03-05"),
        ("后天上午", "2026-03-06"),
        ("下周一", "2026-03-09"),
        ("三月八号", "2026-03-08"),
        ("tomorrow", "2026-03-05"),
        ("next monday", "2026-03-09"),
        ("March 8th", "2026-03-08"),
    ],
)
def test_date_is_read_relative_to_the_call_and_stored_iso(said: str, expected: str) -> None:
    assert accepted(node(SlotType.DATE), text=said) == expected


@pytest.mark.parametrize(("keys", "expected"), [("20260310", "2026-03-10"), ("0310", "2026-03-10")])
def test_date_keys_are_yyyymmdd_or_mmdd(keys: str, expected: str) -> None:
    assert accepted(node(SlotType.DATE), key=keys) == expected


def test_date_without_the_call_time_is_rejected_with_the_reason() -> None:
    check = parse_slot(node(SlotType.DATE), text="明天", today=None)
    assert check == SlotCheck(None, "the call's date is unknown (no occurred_at)")


def test_date_rejects_what_is_no_date() -> None:
    assert accepted(node(SlotType.DATE), text="随便") is None
    assert accepted(node(SlotType.DATE), key="1399") is None


@pytest.mark.parametrize(
    ("said", "key", "expected"),
    [
        ("下午三点半", "", "15:30"),
        ("three thirty pm", "", "15:30"),
        ("", "930", "09:30"),
        ("", "1545", "15:45"),
        ("", "2575", None),
        ("whenever", "", None),
    ],
)
def test_time_is_stored_as_24_hour_clock(said: str, key: str, expected: str | None) -> None:
    assert accepted(node(SlotType.TIME), text=said, key=key) == expected


# -- choice ---------------------------------------------------------------------------------------

_SIZES = (
    Option("small", ("小杯", "小的"), "1"),
    Option("large", ("大杯", "大的", "big"), "2", (r"超大|特大",)),
)


@pytest.mark.parametrize(
    ("said", "key", "expected"),
    [
        ("要小杯", "", "small"),
        ("大的吧", "", "large"),
        ("a big one", "", "large"),
        ("large please", "", "large"),
        ("来个超大的", "", "large"),
        ("", "1", "small"),
        ("", "2", "large"),
        ("不要小杯，要大杯", "", "large"),
        ("中杯", "", None),
        ("", "3", None),
    ],
)
def test_choice_matches_values_keywords_patterns_and_keys(
    said: str, key: str, expected: str | None
) -> None:
    assert accepted(node(SlotType.CHOICE, options=_SIZES), text=said, key=key) == expected


def test_choice_uses_the_flows_synonyms_and_fuzzy_matching() -> None:
    group = ("大杯", "超大杯", "venti")
    synonyms = {normalize(word): group for word in group}
    choice = node(SlotType.CHOICE, options=_SIZES)
    assert accepted(choice, text="venti", synonyms=synonyms) == "large"
    assert accepted(choice, text="larg", fuzzy_threshold=85) == "large"
    assert accepted(choice, text="larg", fuzzy_threshold=0) is None
    assert accepted(choice, text="smol", fuzzy_threshold=85) is None


# -- regex ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "said", "expected"),
    [
        (r"[A-Z]{2}\d{4}", "我的订单号是AB1234", "AB1234"),
        (r"[A-Z]{2}\d{4}", "AB 1234", "AB1234"),
        (r"(?i)[a-z]{2}\d{4}", "ab1234", "ab1234"),
        (r"order (?P<value>\d+)", "order 778", "778"),
        (r"[A-Z]{2}\d{4}", "ＡＢ１２３４", "AB1234"),
        (r"[A-Z]{2}\d{4}", "ab1234", None),
        (r"\d{6}", "一二三", None),
    ],
)
def test_regex_finds_the_pattern_and_stores_the_match_or_value_group(
    pattern: str, said: str, expected: str | None
) -> None:
    assert accepted(node(SlotType.REGEX, pattern=pattern), text=said) == expected


# -- the types that were there before -------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot_type", "fields", "said", "key", "expected"),
    [
        (SlotType.DIGITS, {"min_length": 4, "max_length": 4}, "一二三四", "", "1234"),
        (SlotType.DIGITS, {"min_length": 4, "max_length": 4}, "", "123", None),
        (SlotType.NUMBER, {}, "twenty five", "", "25"),
        (SlotType.NUMBER, {"pattern": "[1-5]"}, "七", "", None),
        (SlotType.YES_NO, {}, "对的", "", "yes"),
        (SlotType.YES_NO, {}, "", "2", "no"),
        (SlotType.TEXT, {}, "  随便说说  ", "", "随便说说"),
        (SlotType.TEXT, {}, "   ", "", None),
    ],
)
def test_digits_number_yes_no_and_text_still_work(
    slot_type: SlotType, fields: dict[str, Any], said: str, key: str, expected: str | None
) -> None:
    assert accepted(node(slot_type, **fields), text=said, key=key) == expected


# -- values inside a sentence -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slot_type", "said", "expected"),
    [
        (SlotType.DIGITS, "我的号码是幺三八零零一三八零零零", "13800138000"),
        (SlotType.DIGITS, "my number is one three eight zero zero one three eight", "13800138"),
        (SlotType.DIGITS, "oh, my code is 12345", "12345"),
        (SlotType.MOBILE_CN, "帮我查一下，号码是138 0013 8000", "13800138000"),
        (SlotType.MOBILE_CN, "我的手机是加八六幺三八零零一三八零零零", "13800138000"),
        (
            SlotType.MOBILE_CN,
            "my mobile is one three eight double zero one three eight triple zero",
            "13800138000",
        ),
        (
            SlotType.E164,
            "my number is plus one four one five five five five zero one zero zero",
            "+14155550100",
        ),
        (SlotType.E164, "号码是加一 四一五 五五五 零一零零", "+14155550100"),
        (SlotType.NUMBER, "I want two tickets please", "2"),
        (SlotType.NUMBER, "我要两张票", "2"),
        (SlotType.NUMBER, "大概一千吧", "1000"),
        (SlotType.NUMBER, "我打五分", "5"),
        (SlotType.NUMBER, "给5分吧", "5"),
        (SlotType.INTEGER, "it's minus five degrees", "-5"),
        (SlotType.INTEGER, "大概负十二吧", "-12"),
        (SlotType.AMOUNT, "大概一千块吧", "1000.00"),
        (SlotType.AMOUNT, "一共是三百五十块钱", "350.00"),
        (SlotType.AMOUNT, "三块五毛二吧", "3.52"),
        (SlotType.AMOUNT, "about a thousand dollars", "1000.00"),
        (SlotType.AMOUNT, "it's three dollars fifty please", "3.50"),
        (SlotType.AMOUNT, "$3.50 please", "3.50"),
    ],
)
def test_a_value_is_found_inside_a_sentence(slot_type: SlotType, said: str, expected: str) -> None:
    assert accepted(node(slot_type), text=said) == expected


@pytest.mark.parametrize(
    ("slot_type", "said", "problem"),
    [
        # Two values: the caller is asked again, not guessed for.
        (SlotType.NUMBER, "two tickets for three people", "holds more than one answer (2, 3)"),
        (SlotType.NUMBER, "我打三到五分", "holds more than one answer (3, 5)"),
        (SlotType.DIGITS, "账号12345，密码6789", "holds more than one answer (12345, 6789)"),
        (SlotType.AMOUNT, "三块或者五块", "holds more than one answer (3.00, 5.00)"),
        # An estimate or a fraction is no one value.
        (SlotType.NUMBER, "十五六个吧", "is not a number"),
        (SlotType.INTEGER, "about three and a half", "is not a whole number"),
        # A value understood but invalid says why.
        (SlotType.MOBILE_CN, "我的号码是一二八零零一三八零零零", "is not a Chinese mobile number"),
        (SlotType.NUMBER, "I'd say twenty, more or less", "expected 1-1"),
    ],
)
def test_an_ambiguous_or_invalid_value_in_a_sentence_is_rejected(
    slot_type: SlotType, said: str, problem: str
) -> None:
    fields = {"max_length": 1} if slot_type is SlotType.NUMBER else {}
    check = parse_slot(node(slot_type, **fields), text=said, today=TODAY)
    assert check.value is None
    assert problem in check.problem


def test_of_several_values_in_a_sentence_the_one_valid_is_taken() -> None:
    # "一下" says no number, and a stray digit is no mobile number: the phone number is the one.
    check = parse_slot(node(SlotType.MOBILE_CN), text="我要一张，号码是13800138000")
    assert check.value == "13800138000"


# -- a correction in the same breath at confirmation ----------------------------------------------


@pytest.mark.parametrize(
    ("slot_type", "said", "correction"),
    [
        (SlotType.NUMBER, "不对，是六位", "6"),
        (SlotType.NUMBER, "不对是六位", "6"),
        (SlotType.NUMBER, "错了，应该是七个", "7"),
        (SlotType.NUMBER, "不是五位，是六位", "6"),
        (SlotType.NUMBER, "no, it's 6", "6"),
        (SlotType.NUMBER, "no it's six", "6"),
        (SlotType.NUMBER, "it's not 5, it's 6", "6"),
        (SlotType.MOBILE_CN, "不对，是一三九零零一三九零零零", "13900139000"),
        (SlotType.DATE, "不对，是后天", "2026-03-06"),
        (SlotType.TIME, "no, half past 3 pm", "15:30"),
    ],
)
def test_a_no_with_a_new_value_corrects_it(slot_type: SlotType, said: str, correction: str) -> None:
    reply = read_confirmation(node(slot_type), text=said, today=TODAY)
    assert reply == ConfirmationReply(False, correction)


@pytest.mark.parametrize(
    ("slot_type", "said", "problem"),
    [
        (SlotType.NUMBER, "不对", ""),
        (SlotType.NUMBER, "no, that's wrong", ""),
        # The negated value is the old one: no new value.
        (SlotType.NUMBER, "不是五位", ""),
        # Ambiguous: asked again, not guessed.
        (SlotType.NUMBER, "不对，三到五位", "holds more than one answer (3, 5)"),
        (SlotType.MOBILE_CN, "no, one two three", "is not a Chinese mobile number"),
        # Text takes any words, so a no is only a no.
        (SlotType.TEXT, "不对，张三", ""),
    ],
)
def test_a_no_without_an_acceptable_new_value_is_only_a_no(
    slot_type: SlotType, said: str, problem: str
) -> None:
    reply = read_confirmation(node(slot_type), text=said, today=TODAY)
    assert (reply.answer, reply.correction) == (False, None)
    assert problem in reply.problem


@pytest.mark.parametrize(
    ("said", "key", "answer"),
    [
        ("对", "", True),
        ("yes, six", "", True),
        ("", "1", True),
        ("", "2", False),
        ("嗯嗯啊", "", True),
        ("随便", "", None),
    ],
)
def test_a_confirmation_without_a_no_carries_no_correction(
    said: str, key: str, answer: bool | None
) -> None:
    reply = read_confirmation(node(SlotType.NUMBER), text=said, key=key, today=TODAY)
    assert reply == ConfirmationReply(answer)


@pytest.mark.parametrize(("said", "key"), [("一二" * 30, ""), ("", "9" * 40)])
def test_an_amount_too_long_to_hold_is_rejected_not_an_error(said: str, key: str) -> None:
    check = parse_slot(node(SlotType.AMOUNT), text=said, key=key)
    assert (check.value, check.problem.endswith("is too large an amount")) == (None, True)


@pytest.mark.parametrize(
    ("collect", "said", "expected"),
    [
        (node(SlotType.DATE), "我想约明天下午", "2026-03-05"),
        (node(SlotType.DATE), "I'd like to come next monday please", "2026-03-09"),
        (node(SlotType.TIME), "我大概下午三点半到", "15:30"),
        (node(SlotType.TIME), "I'll be there at half past 3 pm", "15:30"),
        (node(SlotType.YES_NO), "嗯，是的", "yes"),
        (node(SlotType.YES_NO), "I think so, yes", "yes"),
        (node(SlotType.REGEX, pattern="[A-Z]{2}[0-9]{4}"), "我的订单号是AB1234", "AB1234"),
        (
            node(SlotType.CHOICE, options=(Option("large", ("大杯",)), Option("small", ("小杯",)))),
            "给我来个大杯吧",
            "large",
        ),
    ],
)
def test_the_other_slot_types_find_their_value_inside_a_sentence(
    collect: Collect, said: str, expected: str
) -> None:
    assert accepted(collect, text=said) == expected


@pytest.mark.parametrize("said", ["两三个", "我们一两个人", "五六张吧"])
def test_an_estimate_is_asked_again_not_guessed(said: str) -> None:
    # Regression (issue 17 QA): "两三个" was 23.
    assert accepted(node(SlotType.INTEGER), text=said) is None
    assert accepted(node(SlotType.NUMBER), text=said) is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [("1.5万", "15000.00"), ("大概1.5万块吧", "15000.00"), ("三点五万元", "35000.00")],
)
def test_amounts_counted_in_wan_with_a_decimal(said: str, expected: str) -> None:
    assert accepted(node(SlotType.AMOUNT), text=said) == expected


def test_a_hesitation_before_a_no_at_confirmation_still_takes_the_new_value() -> None:
    reply = read_confirmation(node(SlotType.NUMBER), text="嗯，不对，是六位", today=TODAY)
    assert reply == ConfirmationReply(False, "6")


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        # Regression (issue 17 QA): "两百块一个人" was 200.10 (the 一 of 一个人 read as 一毛).
        ("两百块一个人", "200.00"),
        ("一个人两百块", "200.00"),
        ("十块钱一个", "10.00"),
        ("两张票一共三百块", "300.00"),
        ("三百元人民币", "300.00"),  # 人 of 人民币 is no classifier
        ("三百人民币", "300.00"),
    ],
)
def test_a_count_of_things_is_no_money(said: str, expected: str) -> None:
    assert accepted(node(SlotType.AMOUNT), text=said) == expected


@pytest.mark.parametrize("said", ["三块五一斤", "三块五十"])
def test_the_shorthand_after_a_money_unit_is_one_digit(said: str) -> None:
    # Regression (issue 17 QA): "三块五一斤" was 8.10 (五一 read as 51 毛).
    assert accepted(node(SlotType.AMOUNT), text=said) is None


def test_a_count_is_still_the_answer_to_how_many() -> None:
    assert accepted(node(SlotType.INTEGER), text="一个人") == "1"
    assert accepted(node(SlotType.INTEGER), text="两百五十个") == "250"


def test_two_values_in_a_correction_are_asked_again() -> None:
    # Regression (issue 17 QA): "六来着" read 来 as an estimate (一百来块), leaving 五 alone.
    reply = read_confirmation(node(SlotType.NUMBER), text="不对，是五还是六来着", today=TODAY)
    assert (reply.answer, reply.correction) == (False, None)
    assert accepted(node(SlotType.NUMBER), text="是六来着") == "6"


@pytest.mark.parametrize(("said", "expected"), [("零下五度", "-5"), ("现在零下十二度", "-12")])
def test_below_zero_is_negative(said: str, expected: str) -> None:
    # Regression (issue 17 QA): "零下五度" was two values (0 and 5).
    assert accepted(node(SlotType.INTEGER), text=said) == expected


@pytest.mark.parametrize(
    ("slot_type", "said", "expected"),
    [
        # Regression (issue 17 QA): a hesitation inside a number split it into two values.
        (SlotType.MOBILE_CN, "幺三八，嗯，零零幺三，八零零零", "13800138000"),
        (SlotType.MOBILE_CN, "呃 幺三八 呃 零零幺三 八零零零", "13800138000"),
        (SlotType.DIGITS, "um my number is 138 um 0013 8000", "13800138000"),
        (SlotType.DIGITS, "嗯，幺三八零零一三八零零零", "13800138000"),
    ],
)
def test_a_hesitation_inside_a_digit_string(slot_type: SlotType, said: str, expected: str) -> None:
    assert accepted(node(slot_type), text=said) == expected


def test_a_hesitation_inside_a_spoken_e164_number() -> None:
    said = "four one five, uh, five five five, oh one two three"
    assert accepted(node(SlotType.E164, country_code="1"), text=said) == "+14155550123"


def test_a_hesitation_alone_is_no_digits() -> None:
    assert accepted(node(SlotType.DIGITS), text="嗯") is None


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("a dollar fifty", Decimal("1.5")),
        ("a buck", Decimal(1)),
        ("a dollar five", Decimal("1.05")),
    ],
)
def test_a_dollar_is_one(said: str, expected: Decimal) -> None:
    # Regression (issue 17 QA): "a dollar fifty" was no amount.
    assert amount_of(said) == expected
