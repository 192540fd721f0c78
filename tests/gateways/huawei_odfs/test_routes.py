"""Gateway configuration from HUAWEI_* variables, and what build_router refuses or warns about."""

from __future__ import annotations

import logging

import pytest

from gateways.decider import Decider
from gateways.fallback import FallbackPolicy
from gateways.huawei_odfs import routes
from tests.support.ports import closed_port_address


def test_default_listen() -> None:
    assert routes.DEFAULT_LISTEN == "127.0.0.1:8083"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HUAWEI_ODFS_TRANS_DATA": "xml"}, "HUAWEI_ODFS_TRANS_DATA"),
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
