"""json_text: one documented text for every JSON value."""

from __future__ import annotations

import math
from typing import Any

import pytest

from common.jsontext import json_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        ("", ""),
        ("话费", "话费"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (1.0, "1"),
        (0.5, "0.5"),
        (1e20, "1e+20"),
        (math.nan, ""),
        (math.inf, ""),
        ([1, "二", None], '[1,"二",null]'),
        ({"b": 1, "a": [math.nan]}, '{"a":[null],"b":1}'),
    ],
)
def test_every_json_value_has_one_text(value: Any, text: str) -> None:
    assert json_text(value) == text
