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
        kind = type(item)
        # Exact types first: most of a callback is plain text and numbers, and the checks
        # against the Mapping ABC cost several times a type comparison.
        if kind is str:
            # ASCII text holds no surrogate; the rest is encoded to find one.
            if not item.isascii() and not _encodes(item):
                return "holds text that is not valid Unicode (a lone surrogate)"
        elif kind is int or kind is float or kind is bool or item is None:
            continue
        elif isinstance(item, str):
            if not _encodes(item):
                return "holds text that is not valid Unicode (a lone surrogate)"
        elif isinstance(item, Mapping | list | tuple):
            if depth >= max_depth:
                return f"is nested more than {max_depth} levels deep"
            # Children in the order (key, value, key, value, ...) or (index, item, ...), as
            # before: the first problem found, and so the reason given, stays the same.
            children = item.items() if isinstance(item, Mapping) else enumerate(item)
            below = depth + 1
            for first, second in children:
                pending.append((first, below))
                pending.append((second, below))
    return ""


def _encodes(text: str) -> bool:
    """Whether the text is valid Unicode (no lone surrogate), as every UTF-8 encoder needs."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
