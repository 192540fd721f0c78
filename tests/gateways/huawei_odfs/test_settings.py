"""The Huawei settings: declared once, read by one rule, and listed in the docs as declared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateways.huawei_odfs.settings import (
    ACCESS_SETTINGS,
    SETTINGS,
    Settings,
    settings_from_env,
)

DOC = Path(__file__).parents[3] / "docs" / "gateways" / "huawei-odfs.md"


def test_defaults() -> None:
    assert settings_from_env({}) == Settings()
    assert settings_from_env({setting.env: " " for setting in SETTINGS.values()}) == Settings()


def test_every_declaration_matches_the_dataclass_default() -> None:
    defaults = Settings()
    for name, setting in SETTINGS.items():
        value = getattr(defaults, name)
        declared = frozenset(setting.default) if name == "transfer_success" else setting.default
        assert value == declared, name


def test_every_setting_from_the_environment() -> None:
    env = {
        "HUAWEI_ODFS_STRING_CODES": "on",
        "HUAWEI_ODFS_TRANS_RESULT_SUCCESS": "1, 00",
        "HUAWEI_ODFS_DEFAULT_TIMEOUT_S": "8",
        "HUAWEI_ODFS_RECORD_DIR": "D:\\rec",
        "HUAWEI_ODFS_RECORD_TRANSFERS": "yes",
        "HUAWEI_ODFS_TRANS_DATA": "json",
        "HUAWEI_ODFS_ASR_TIMEOUT_UNIT": "ms",
        "HUAWEI_ODFS_GRAMMAR": "g.gram",
        "HUAWEI_ODFS_TTS_GROUP_ID": "1",
        "HUAWEI_ODFS_TTS_MRCP_VENDOR": "v",
        "HUAWEI_ODFS_ASR_MRCP_ID": "2",
        "HUAWEI_ODFS_FILLER_PROMPT": "hold.wav",
        "HUAWEI_ODFS_RETRY_WINDOW_MS": "0",
        "HUAWEI_ODFS_QUERY_SKILL_FIELD": "skillQueueId",
        "HUAWEI_ODFS_QUERY_AGENT_FIELD": "workNo",
        "HUAWEI_ODFS_QUERY_MODULE_NAME": "Query",
        "HUAWEI_ODFS_ESTIMATE_TIME_UNIT": "min",
    }
    assert settings_from_env(env) == Settings(
        string_codes=True,
        transfer_success=frozenset({"1", "00"}),
        default_timeout_s=8,
        record_dir="D:\\rec",
        record_transfers=True,
        trans_data="json",
        asr_timeout_unit="ms",
        grammar="g.gram",
        tts_group_id="1",
        tts_mrcp_vendor="v",
        asr_mrcp_id="2",
        filler_prompt="hold.wav",
        retry_window_ms=0,
        query_skill_field="skillQueueId",
        query_agent_field="workNo",
        query_module_name="Query",
        estimate_time_unit="min",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HUAWEI_ODFS_TRANS_DATA": "xml"}, "HUAWEI_ODFS_TRANS_DATA"),
        ({"HUAWEI_ODFS_ASR_TIMEOUT_UNIT": "min"}, "HUAWEI_ODFS_ASR_TIMEOUT_UNIT"),
        ({"HUAWEI_ODFS_TRANS_RESULT_SUCCESS": " , "}, "HUAWEI_ODFS_TRANS_RESULT_SUCCESS"),
        ({"HUAWEI_ODFS_DEFAULT_TIMEOUT_S": "five"}, "HUAWEI_ODFS_DEFAULT_TIMEOUT_S"),
        ({"HUAWEI_ODFS_DEFAULT_TIMEOUT_S": "0"}, "HUAWEI_ODFS_DEFAULT_TIMEOUT_S"),
        ({"HUAWEI_ODFS_STRING_CODES": "sure"}, "HUAWEI_ODFS_STRING_CODES"),
        ({"HUAWEI_ODFS_ESTIMATE_TIME_UNIT": "h"}, "HUAWEI_ODFS_ESTIMATE_TIME_UNIT"),
        ({"HUAWEI_ODFS_RETRY_WINDOW_MS": "-1"}, "HUAWEI_ODFS_RETRY_WINDOW_MS"),
    ],
)
def test_a_bad_value_names_its_own_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from_env(env)


def test_the_docs_table_lists_every_setting_with_its_default() -> None:
    rows = {
        env: default
        for line in DOC.read_text(encoding="utf-8").splitlines()
        if (found := re.fullmatch(r"\| `(HUAWEI_[A-Z_]+)` \| ([^|]+) \|.*", line))
        for env, default in [found.groups()]
    }
    for setting in [*SETTINGS.values(), *ACCESS_SETTINGS.values()]:
        assert setting.env in rows, setting.env
        default = setting.default
        text = (
            ",".join(default)
            if isinstance(default, tuple)
            else str(default).lower()
            if isinstance(default, bool)
            else str(default)
        )
        shown = rows[setting.env].strip().strip("`")
        assert shown == (text or "empty"), (setting.env, shown, text)
