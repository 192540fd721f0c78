"""gateways.payloads: the checks on parsed vendor JSON every mapping relies on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateways.payloads import json_problem

_SURROGATE = "\ud800"
_UNICODE = "holds text that is not valid Unicode (a lone surrogate)"


def _reasons_in_order(value: Any, max_depth: int) -> str:
    """The walk as first written (isinstance on every item): the oracle of the fast paths."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return _UNICODE
        elif isinstance(item, Mapping | list | tuple):
            if depth >= max_depth:
                return f"is nested more than {max_depth} levels deep"
            children = item.items() if isinstance(item, Mapping) else enumerate(item)
            pending.extend((part, depth + 1) for pair in children for part in pair)
    return ""


_TEXT = st.sampled_from(["", "a", "话费", _SURROGATE, "x" + _SURROGATE, "é"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=12,
)


@given(_JSON, st.integers(min_value=1, max_value=4))
def test_json_problem_gives_the_reason_the_plain_walk_gives(value: Any, max_depth: int) -> None:
    assert json_problem(value, max_depth) == _reasons_in_order(value, max_depth)


class _Text(str):
    """A str subclass, as a form parser may hand."""


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"call_id": "c", "content": {"digits": "1"}, "n": 3}, ""),
        ({"a": [1, 2.5, True, None]}, ""),
        ({_SURROGATE: "key"}, _UNICODE),
        ([{"deep": "话费" + _SURROGATE}], _UNICODE),
        (_Text(_SURROGATE), _UNICODE),
        ((("tuple",),), ""),
        ([[[[]]]], "is nested more than 3 levels deep"),
    ],
)
def test_json_problem_finds_surrogates_anywhere_and_bounds_nesting(value: Any, reason: str) -> None:
    assert json_problem(value, 3) == reason
