"""Gateway configuration from HUAWEI_* variables, and what build_router refuses or warns about."""

from __future__ import annotations

import logging

import pytest

from gateways.decider import Decider
from gateways.fallback import FallbackPolicy
from gateways.huawei_odfs import routes
from gateways.huawei_odfs.mapping import Settings
from tests.support.ports import closed_port_address


def test_defaults() -> None:
    assert routes.settings_from_env({}) == Settings()
    assert routes.DEFAULT_LISTEN == "127.0.0.1:8083"


def test_every_setting_from_the_environment() -> None:
    env = {
        "HUAWEI_ODFS_STRING_CODES": "true",
        "HUAWEI_ODFS_TRANS_RESULT_SUCCESS": "1, 00",
        "HUAWEI_ODFS_DEFAULT_TIMEOUT_S": "8",
        "HUAWEI_ODFS_RECORD_DIR": "D:\\rec",
        "HUAWEI_ODFS_RECORD_TRANSFERS": "yes",
        "HUAWEI_ODFS_TRANS_DATA": "JSON",
        "HUAWEI_ODFS_ASR_TIMEOUT_UNIT": "ms",
        "HUAWEI_ODFS_GRAMMAR": "g.gram",
        "HUAWEI_ODFS_TTS_GROUP_ID": "1",
        "HUAWEI_ODFS_TTS_MRCP_VENDOR": "v",
        "HUAWEI_ODFS_ASR_MRCP_ID": "2",
    }
    assert routes.settings_from_env(env) == Settings(
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
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HUAWEI_ODFS_TRANS_DATA": "xml"}, "HUAWEI_ODFS_TRANS_DATA"),
        ({"HUAWEI_ODFS_ASR_TIMEOUT_UNIT": "min"}, "HUAWEI_ODFS_ASR_TIMEOUT_UNIT"),
        ({"HUAWEI_ODFS_TRANS_RESULT_SUCCESS": " , "}, "HUAWEI_ODFS_TRANS_RESULT_SUCCESS"),
        ({"HUAWEI_ODFS_DEFAULT_TIMEOUT_S": "five"}, "HUAWEI_ODFS_DEFAULT_TIMEOUT_S"),
        ({"HUAWEI_ODFS_DEFAULT_TIMEOUT_S": "0"}, "HUAWEI_ODFS_DEFAULT_TIMEOUT_S"),
        ({"HUAWEI_ODFS_TOKEN_TTL_S": "-1"}, "HUAWEI_ODFS_TOKEN_TTL_S"),
        ({"HUAWEI_ASR_REDIS_TIMEOUT_MS": "x"}, "HUAWEI_ASR_REDIS_TIMEOUT_MS"),
        ({"HUAWEI_ODFS_APP_KEY": "tenant-1"}, "HUAWEI_ODFS_APP_SECRET"),
        ({"HUAWEI_ODFS_APP_SECRET": "s3cret"}, "HUAWEI_ODFS_APP_KEY"),
    ],
)
async def test_invalid_configuration_is_refused(env: dict[str, str], message: str) -> None:
    decider = Decider(closed_port_address(), 0.5, FallbackPolicy())
    try:
        with pytest.raises(ValueError, match=message):
            routes.build_router(decider, env)
    finally:
        await decider.close()


@pytest.mark.parametrize(
    ("env", "warned"),
    [
        ({}, True),
        ({"HUAWEI_ODFS_AUTH_TOKENS": "ivr-a"}, False),
        ({"HUAWEI_ODFS_APP_KEY": "tenant-1", "HUAWEI_ODFS_APP_SECRET": "s3cret"}, False),
    ],
)
async def test_a_loud_warning_when_authentication_is_off(
    env: dict[str, str], warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    decider = Decider(closed_port_address(), 0.5, FallbackPolicy())
    try:
        with caplog.at_level(logging.WARNING, logger="dialogue.gateway.huawei_odfs"):
            routes.build_router(decider, env)
    finally:
        await decider.close()
    warnings = [r for r in caplog.records if "AUTHENTICATION IS OFF" in r.getMessage()]
    assert bool(warnings) == warned
