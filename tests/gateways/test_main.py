"""`dialogue-gateway VENDOR` as a process: start, health, readiness, refusals, clean stop."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from gateways.vendors import VENDORS
from tests.support.server_process import MEMORY_SERVER_ARGS, REPO_ROOT, start_gateway, start_server

_BOUND_S = 60


# What a gateway needs to start at all (Telnyx refuses to run without a key or the dev switch).
_REQUIRED_ENV = {"telnyx": {"TELNYX_API_KEY": "test-key", "TELNYX_SKIP_SIGNATURE": "true"}}


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_each_gateway_serves_health_and_readiness_and_stops_cleanly(vendor: str) -> None:
    env = {**os.environ, **_REQUIRED_ENV.get(vendor, {})}
    with (
        start_server(*MEMORY_SERVER_ARGS) as server,
        start_gateway(
            vendor, "--listen", "127.0.0.1:0", "--server", server.address, env=env
        ) as gateway,
    ):
        base = f"http://{gateway.address}"
        assert httpx.get(f"{base}/healthz", timeout=_BOUND_S).json() == {
            "status": "ok",
            "vendor": vendor,
        }
        ready = httpx.get(f"{base}/readyz", timeout=_BOUND_S)
        assert ready.status_code == 200, ready.text
        assert gateway.stop() == 0


def test_a_gateway_runs_on_asyncios_own_loop_when_asked() -> None:
    # Every other test runs the default, uvloop (common/eventloop.py).
    with (
        start_server(*MEMORY_SERVER_ARGS, "--event-loop", "asyncio") as server,
        start_gateway(
            "aliyun-ivr", "--listen", "127.0.0.1:0", "--server", server.address,
            "--event-loop", "asyncio",
        ) as gateway,
    ):  # fmt: skip
        ready = httpx.get(f"http://{gateway.address}/readyz", timeout=_BOUND_S)
        assert ready.status_code == 200, ready.text
        assert gateway.stop() == 0


def test_a_gateway_refuses_half_an_access_key_pair() -> None:
    env = {**os.environ, "ALIYUN_CCC_ACCESS_KEY_ID": "LTAIexample"}
    env.pop("ALIYUN_CCC_ACCESS_KEY_SECRET", None)
    result = subprocess.run(
        [sys.executable, "-m", "gateways", "aliyun-ccc", "--listen", "127.0.0.1:0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=_BOUND_S,
        check=False,
    )
    assert result.returncode == 2
    assert "ALIYUN_CCC_ACCESS_KEY_SECRET" in result.stderr


def test_telnyx_refuses_to_start_without_a_public_key_or_the_dev_switch() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TELNYX_")}
    result = subprocess.run(
        [sys.executable, "-m", "gateways", "telnyx", "--listen", "127.0.0.1:0"],
        cwd=REPO_ROOT,
        env={**env, "TELNYX_API_KEY": "test-key"},
        capture_output=True,
        text=True,
        timeout=_BOUND_S,
        check=False,
    )
    assert result.returncode == 2
    assert "TELNYX_PUBLIC_KEY" in result.stderr
