"""The fenced blocks of a Markdown guide, for tests that run its examples."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Block:
    """One ``` block: its language (empty for none), its text, and the line it starts on."""

    language: str
    body: str
    line: int


def fenced_blocks(guide: str) -> list[Block]:
    """Every fenced block of the guide, in order."""
    return [
        Block(fence.group(1), fence.group(2), guide.count("\n", 0, fence.start()) + 1)
        for fence in _FENCE.finditer(guide)
    ]
