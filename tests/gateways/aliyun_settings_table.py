"""The docs' settings table of a gateway, rendered from its `Setting` declarations (tests only)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.settings import Setting

_TABLE = re.compile(r"<!-- settings:begin -->\n(.*?)<!-- settings:end -->", re.S)
_HEADER = "| env | default | what |\n|---|---|---|\n"


def table(settings: Iterable[Setting[Any]]) -> str:
    """The markdown table: one row per setting, its env, default and help."""
    rows = [_HEADER]
    for setting in settings:
        default = setting.default
        if isinstance(default, bool):
            shown = "true" if default else "false"
        elif default in ("", (), {}, None):
            shown = "empty"
        else:
            shown = f"`{default}`"
        rows.append(f"| `{setting.env}` | {shown} | {setting.help} |\n")
    return "".join(rows)


def documented(doc: Path) -> str:
    """The table between the settings markers of a doc ("" when it has none)."""
    found = _TABLE.search(doc.read_text(encoding="utf-8"))
    return found.group(1) if found else ""
