"""Phone numbers are masked in logs; call ids are not."""

from __future__ import annotations

import logging

import pytest

from telemetry.masking import PhoneMaskingFilter, has_phone, mask_phone, mask_phones


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("caller 13800138000 called", "caller 138******00 called"),
        ("+8613800138000", "+861********00"),
        ("to +18005550100 now", "to +180******00 now"),
        ("call 100001616500^100001871490", "call 100001616500^100001871490"),
        ("no numbers here", "no numbers here"),
    ],
)
def test_mask_phone(text: str, masked: str) -> None:
    assert mask_phone(text) == masked


def test_the_filter_masks_the_formatted_message() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "caller %s", ("13800138000",), None)
    assert PhoneMaskingFilter().filter(record)
    assert record.getMessage() == "caller 138******00"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("a13800138000", "a138******00"),  # a letter before the number ends a digit run
        ("113800138000", "113800138000"),  # 12 digits: not a mobile number
        ("13800138000", "138******00"),  # at the very start
        ("x=13800138000 y", "x=138******00 y"),
        ("+1234567", "+123**67"),
        ("1+8613800138000", "1+861********00"),
    ],
)
def test_a_mobile_number_stands_alone_and_an_e164_number_follows_a_plus(
    text: str, masked: str
) -> None:
    assert mask_phone(text) == masked


@pytest.mark.parametrize(
    "texts",
    [
        [],
        [""],
        ["turn", "+8613800138000", "10086", "13912345678"],
        ["1380013", "8000"],  # a number is never made across two texts
        ["+", "8613800138000"],
        ["held \x00 the separator 13800138000", "+8613800138000"],
    ],
)
def test_mask_phones_masks_each_text_as_mask_phone_would(texts: list[str]) -> None:
    assert mask_phones(texts) == [mask_phone(text) for text in texts]


def test_has_phone_says_whether_masking_would_change_the_text() -> None:
    assert has_phone("caller +8613800138000")
    assert not has_phone("call 100001616500^100001871490")
