"""The CCC routes' settings: declared once and documented as declared."""

from __future__ import annotations

from pathlib import Path

from gateways.aliyun_ccc import routes
from tests.gateways.aliyun_settings_table import documented, table

DOC = Path(__file__).resolve().parents[3] / "docs" / "gateways" / "aliyun-ccc.md"


def test_the_docs_settings_table_is_the_declarations() -> None:
    assert documented(DOC) == table(routes.SETTINGS.values())
