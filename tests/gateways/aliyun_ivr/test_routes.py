"""The IVR routes' settings: declared once, documented as declared, errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateways.aliyun_ivr import routes
from tests.gateways.aliyun_settings_table import documented, table

DOC = Path(__file__).resolve().parents[3] / "docs" / "gateways" / "aliyun-ivr.md"


def test_the_docs_settings_table_is_the_declarations() -> None:
    assert documented(DOC) == table([*routes.SETTINGS.values(), routes.CALLBACK_TOKEN])


def test_defaults() -> None:
    settings = routes.settings_from_env({})
    assert (settings.follow_up_mute_time_ms, settings.number_format, settings.mixed_menu) == (
        1000,
        "national",
        "dtmf",
    )


@pytest.mark.parametrize(
    "env",
    [
        {"ALIYUN_NUMBER_FORMAT": "intl"},
        {"ALIYUN_MIXED_MENU": "both"},
        {"ALIYUN_RECORD": "maybe"},
        {"ALIYUN_SESSION_TIMEOUT_S": "0"},
        {"ALIYUN_TRANSFER_NUMBERS": "no-equals"},
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=next(iter(env))):
        routes.settings_from_env(env)


def test_booleans_read_on_and_off() -> None:
    assert routes.settings_from_env({"ALIYUN_RECORD": "off"}).record_flag is False
    assert routes.settings_from_env({"ALIYUN_RECORD": "ON"}).record_flag is True
