"""Checks on parsed vendor JSON that every vendor mapping needs (pure; no framework)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def json_problem(value: Any, max_depth: int) -> str:
    """Why a parsed JSON value cannot be mapped, or "" when it can.

    Two things json.loads (and a form decoded with an exotic charset) lets through: text that is
    not Unicode (a lone surrogate, from a `\\ud800` escape), which no UTF-8 encoder — hashing,
    protobuf, a token check — accepts; and nesting deep enough to exhaust the recursion of code
    that walks it. Checked without recursion, in time proportional to the value's size.
    """
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return "holds text that is not valid Unicode (a lone surrogate)"
        elif isinstance(item, Mapping | list | tuple):
            if depth >= max_depth:
                return f"is nested more than {max_depth} levels deep"
            children = item.items() if isinstance(item, Mapping) else enumerate(item)
            pending.extend((part, depth + 1) for pair in children for part in pair)
    return ""


class CallbackError(ValueError):
    """A vendor callback the gateway cannot read: every vendor answers it in its own error format.

    The one name for this role in every gateway; a vendor that must carry more (an error code,
    the caller's id) subclasses it.

    Attributes:
        reason: Human-readable, names the offending field.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
