"""The CCC routes' settings: declared once and documented as declared."""

from __future__ import annotations

import uuid
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gateways.aliyun_ccc import routes
from tests.gateways.aliyun_settings_table import documented, table

DOC = Path(__file__).resolve().parents[3] / "docs" / "gateways" / "aliyun-ccc.md"


def test_the_docs_settings_table_is_the_declarations() -> None:
    assert documented(DOC) == table(routes.SETTINGS.values())


@given(st.text())
def test_answer_request_ids_are_the_uuid5_of_their_seed(seed: str) -> None:
    # The RequestId as first derived (a UUID object): a retry's answer must stay identical.
    expected = str(uuid.uuid5(routes._REQUEST_ID_NAMESPACE, seed)).upper()
    assert routes.answer_request_id(seed) == expected
