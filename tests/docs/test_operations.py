"""docs/operations.md's settings tables name every setting the server and the gateways declare,
with its flag, so that an operator reading the table sees every knob there is."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest

from common.settings import Setting
from gateways import config as gateway_config
from server import config as server_config

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
_SECTIONS = {server_config: "## Running the server", gateway_config: "## Running the gateways"}


def _declared(module: ModuleType) -> list[Setting[object]]:
    settings = {id(v): v for v in vars(module).values() if isinstance(v, Setting)}
    return sorted(settings.values(), key=lambda s: s.env)


def _table_rows(heading: str) -> list[str]:
    text = GUIDE.read_text("utf-8")
    section = text[text.index(heading) :]
    section = section[: section.find("\n## ", len(heading))]
    return [line for line in section.splitlines() if line.startswith("| ")]


@pytest.mark.parametrize(
    ("module", "setting"),
    [(m, s) for m in _SECTIONS for s in _declared(m)],
    ids=lambda v: v.env if isinstance(v, Setting) else v.__name__,
)
def test_every_setting_has_its_row_with_its_flag(
    module: ModuleType, setting: Setting[object]
) -> None:
    rows = [r for r in _table_rows(_SECTIONS[module]) if re.search(rf"`{setting.env}`", r)]
    assert rows, f"docs/operations.md has no row for {setting.env}"
    if setting.flag:
        assert any(f"`{setting.flag}`" in r for r in rows), (
            f"docs/operations.md's row for {setting.env} does not name {setting.flag}"
        )
