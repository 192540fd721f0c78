"""Small pure pieces every Telnyx module shares: limits, key and number checks, text clipping.

The limits are of two kinds: Telnyx's (the OpenAPI spec) and the dialogue.v1 contract's
(server/validation.py), clipped to so that a well-formed webhook never becomes an
INVALID_ARGUMENT request.
"""

from __future__ import annotations

import re
from typing import Any, Final

from common.jsontext import json_text
from gateways.payloads import json_problem

Command = tuple[str, dict[str, Any]]
"""One Call Control command: its name (the last path segment) and its JSON body."""

INT32_MAX: Final = 2**31 - 1

# Limits of the dialogue.v1 contract (server/validation.py): clipped so that a well-formed
# webhook never becomes an INVALID_ARGUMENT request.
MAX_ID = 128
MAX_NUMBER = 64
MAX_TEXT = 4096
MAX_REASON = 1024
MAX_DIGITS = 64

# Deeper than any webhook or client_state is; shallow enough that the recursive code after the
# check (json.dumps, Struct conversion; the server's protobuf parser stops at 100 levels of
# messages, about 33 of JSON in a Struct) stays within its limits.
MAX_DEPTH = 24

KEYS = frozenset("0123456789*#ABCD")
_DIALLABLE = re.compile(r"\+?\d{3,32}(,[0-9A-DwW*#]{1,64})?")
E164 = re.compile(r"\+\d{3,20}")
_SIP_URI = re.compile(r"sips?:[^\s,]{1,512}")


def is_destination(value: str) -> bool:
    return bool(_DIALLABLE.fullmatch(value) or _SIP_URI.fullmatch(value))


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def text_of(value: Any) -> str:
    """A webhook field as text (common.jsontext: null is "", 1.0 is "1"), trimmed."""
    return json_text(value).strip()


def unreadable(value: Any) -> str:
    """Why a parsed value cannot be mapped, or "" (see `gateways.payloads.json_problem`)."""
    return json_problem(value, MAX_DEPTH)
