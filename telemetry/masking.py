"""Phone numbers never reach the logs in full (server and gateways alike)."""

from __future__ import annotations

import logging
import re

# E.164 numbers and Chinese mobile numbers. Call ids are digit runs too, but of other lengths
# and without '+', and support needs them whole, so they are left alone.
_PHONE = re.compile(r"\+\d{6,15}|(?<!\d)1[3-9]\d{9}(?!\d)")


def mask_phone(text: str) -> str:
    """Masks every phone number in text, keeping the first 3 and last 2 digits: 138******00."""
    return _PHONE.sub(lambda found: _mask(found.group()), text)


def _mask(number: str) -> str:
    keep_head = 4 if number.startswith("+") else 3
    return number[:keep_head] + "*" * (len(number) - keep_head - 2) + number[-2:]


class PhoneMaskingFilter(logging.Filter):
    """A logging filter that masks phone numbers in the final message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_phone(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
