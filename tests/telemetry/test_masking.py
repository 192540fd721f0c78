"""Phone numbers are masked in logs; call ids are not."""

from __future__ import annotations

import logging

import pytest

from telemetry.masking import PhoneMaskingFilter, mask_phone


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
