"""A gateway's security: TLS, mutual TLS and a token towards the server; body and header limits
towards the vendor; secrets that never reach a log; settings that cannot work refused at start.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateways.app import create_vendor_app
from gateways.decider import Decider, Outcome
from gateways.security import (
    ChannelSecurity,
    ConfigurationError,
    load_channel_security,
)
from server.app import create_server
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.security import ServerSecurity, load_server_credentials
from server.store import open_store
from tests.gateways.telnyx.harness import webhook
from tests.support.certs import Pki, make_pki
from tests.support.gateway import TEST_FALLBACK
from tests.support.grpc_server import request
from tests.support.ports import closed_port_address
from tests.support.server_process import (
    MEMORY_SERVER_ARGS,
    REPO_ROOT,
    RunningServer,
    start_gateway,
    start_server,
)

_BOUND_S = 60
TOKEN = "gateway-to-server-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@asynccontextmanager
async def mtls_server(pki: Pki) -> AsyncIterator[str]:
    """A server requiring a client certificate from the test CA and the token; its address."""
    credentials = load_server_credentials(pki.server.cert, pki.server.key, pki.ca)
    store = open_store("memory://")
    running = await create_server(
        "127.0.0.1:0",
        load_catalog(DEMO_FLOWS),
        store,
        security=ServerSecurity(credentials, (TOKEN,)),
    )
    try:
        yield f"localhost:{running.port}"
    finally:
        await running.server.stop(None)
        await store.close()


async def decide(
    address: str, security: ChannelSecurity, call_id: str, deadline_s: float = 20.0
) -> Outcome:
    decider = Decider(address, deadline_s, TEST_FALLBACK, security=security)
    try:
        return await decider.decide(request(call_id, "r1", call_started={}))
    finally:
        await decider.close()


# -- towards the server -------------------------------------------------------------------------


async def test_the_gateway_reaches_a_mutual_tls_server_with_its_certificate_and_token(
    pki: Pki,
) -> None:
    security = load_channel_security(
        server_ca=pki.ca, client_cert=pki.client.cert, client_key=pki.client.key, token=TOKEN
    )
    async with mtls_server(pki) as address:
        outcome = await decide(address, security, "mtls-1")
        decider = Decider(address, 20.0, TEST_FALLBACK, security=security)
        try:
            assert await decider.ready()
        finally:
            await decider.close()
    assert not outcome.is_fallback
    assert outcome.response.diagnostics.node_id == "main_menu"


async def test_what_the_server_refuses_becomes_the_fallback(pki: Pki) -> None:
    async with mtls_server(pki) as address:
        wrong_ca = load_channel_security(
            server_ca=pki.stranger_ca,
            client_cert=pki.client.cert,
            client_key=pki.client.key,
            token=TOKEN,
        )
        no_certificate = load_channel_security(server_ca=pki.ca, token=TOKEN)
        stranger_certificate = load_channel_security(
            server_ca=pki.ca,
            client_cert=pki.stranger_client.cert,
            client_key=pki.stranger_client.key,
            token=TOKEN,
        )
        no_token = load_channel_security(
            server_ca=pki.ca, client_cert=pki.client.cert, client_key=pki.client.key
        )
        plaintext = ChannelSecurity(token=TOKEN)
        # A handshake that fails leaves no server to wait for: the call spends its whole
        # deadline waiting (wait_for_ready), so those get a short one.
        reasons = {
            name: (
                await decide(
                    address, security, f"refused-{name}", 20.0 if name == "no_token" else 2.0
                )
            ).fallback_reason
            for name, security in {
                "wrong_ca": wrong_ca,
                "no_certificate": no_certificate,
                "stranger_certificate": stranger_certificate,
                "no_token": no_token,
                "plaintext": plaintext,
            }.items()
        }
    assert reasons == {
        "wrong_ca": "UNAVAILABLE",
        "no_certificate": "UNAVAILABLE",
        "stranger_certificate": "UNAVAILABLE",
        "no_token": "UNAUTHENTICATED",
        "plaintext": "UNAVAILABLE",
    }


def test_channel_settings_that_cannot_work_are_refused(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigurationError, match="set both --client-cert and --client-key"):
        load_channel_security(client_cert=pki.client.cert)
    with pytest.raises(ConfigurationError, match=r"--server-ca .*missing\.pem: cannot read"):
        load_channel_security(server_ca=missing)
    with pytest.raises(ConfigurationError, match="is not the key of the certificate"):
        load_channel_security(client_cert=pki.client.cert, client_key=pki.server.key)
    assert not load_channel_security().tls
    assert load_channel_security(server_tls=True).tls
    secured = load_channel_security(
        client_cert=pki.client.cert, client_key=pki.client.key, token=TOKEN
    )
    assert secured.tls
    assert TOKEN not in repr(secured)
    assert b"PRIVATE" not in repr(secured).encode()


def test_a_missing_ca_file_stops_the_gateway_with_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    result = subprocess.run(
        [sys.executable, "-m", "gateways", "aliyun-ivr", "--listen", "127.0.0.1:0"],
        cwd=REPO_ROOT,
        env={**os.environ, "DIALOGUE_SERVER_CA": str(missing)},
        capture_output=True,
        text=True,
        timeout=_BOUND_S,
        check=False,
    )
    assert result.returncode == 2
    assert f"refusing to start: --server-ca {missing}: cannot read" in result.stderr
    assert "listening" not in result.stdout


# -- towards the vendor: body and header limits -------------------------------------------------

_LIMIT = 1024


def _check_aliyun_ivr(body: bytes, _content_type: str) -> None:
    answer = json.loads(body)
    assert answer["result"] == "fail"
    assert "larger than 1024 bytes" in answer["msg"]


def _check_aliyun_ccc(body: bytes, content_type: str) -> None:
    if "xml" in content_type:
        assert b"<HttpStatusCode>413</HttpStatusCode>" in body
        assert b"<Success>false</Success>" in body
    else:
        answer = json.loads(body)
        assert (answer["HttpStatusCode"], answer["Success"]) == (413, False)
        assert answer["RequestId"]


def _check_huawei_odfs(body: bytes, _content_type: str) -> None:
    answer = json.loads(body)
    assert answer["ret"] == -1
    assert "larger than 1024 bytes" in answer["errorMsg"]


def _check_telnyx(body: bytes, _content_type: str) -> None:
    assert "larger than 1024 bytes" in json.loads(body)["error"]


_VENDORS: dict[str, tuple[str, dict[str, str], Any]] = {
    "aliyun-ivr": ("/aliyun/ivr/callback", {}, _check_aliyun_ivr),
    "aliyun-ccc": ("/", {}, _check_aliyun_ccc),
    "huawei-odfs": ("/oifde/rest/crs/process", {}, _check_huawei_odfs),
    "telnyx": (
        "/telnyx/webhooks",
        {"TELNYX_API_KEY": "key", "TELNYX_SKIP_SIGNATURE": "true"},
        _check_telnyx,
    ),
}


@pytest.mark.parametrize("vendor", sorted(_VENDORS))
async def test_a_body_over_the_limit_is_413_in_the_vendors_format(vendor: str) -> None:
    path, env, check = _VENDORS[vendor]
    big = b'{"x": "' + b"a" * (2 * _LIMIT) + b'"}'

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    decider = Decider(closed_port_address(), 1.0, TEST_FALLBACK)
    app = create_vendor_app(vendor, decider, env, max_body_bytes=_LIMIT)
    transport = httpx.ASGITransport(app=app)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        declared = await client.post(path, content=big, headers=headers)
        streamed = await client.post(path, content=chunks(), headers=headers)
        small = await client.post(path, content=b'{"x": 1}', headers=headers)
        xml = await client.post(f"{path}?Format=XML", content=big, headers=headers)
        scraped = await client.get("/metrics")
    await decider.close()
    for answer in (declared, streamed):
        assert answer.status_code == 413
        check(answer.content, answer.headers["content-type"])
    assert "content-length" not in streamed.request.headers
    assert small.status_code != 413
    if vendor == "aliyun-ccc":
        assert xml.status_code == 413
        check(xml.content, xml.headers["content-type"])
    assert 'status="413"' in scraped.text


def test_headers_over_the_limit_are_refused() -> None:
    with start_gateway(
        "aliyun-ivr",
        "--listen",
        "127.0.0.1:0",
        "--server",
        closed_port_address(),
        "--max-header-bytes",
        "4096",
    ) as gateway:
        base = f"http://{gateway.address}"
        assert httpx.get(f"{base}/healthz", timeout=_BOUND_S).status_code == 200
        # Arriving in one read, these are measured by the app (h11 bounds only trickling ones).
        huge = httpx.get(f"{base}/healthz", headers={"x-padding": "a" * 8192}, timeout=_BOUND_S)
        assert huge.status_code == 431
        assert "larger than 4096 bytes" in huge.json()["msg"]
        long_query = httpx.get(f"{base}/healthz?q={'b' * 8192}", timeout=_BOUND_S)
        assert long_query.status_code == 431
        assert httpx.get(f"{base}/healthz", timeout=_BOUND_S).status_code == 200


# -- secrets never reach a log ------------------------------------------------------------------

SECRETS = {
    "DIALOGUE_AUTH_TOKENS": "srv-token-5f1e9a,srv-token-second-77c2",
    "DIALOGUE_AUTH_TOKEN": "srv-token-5f1e9a",
    "ALIYUN_CALLBACK_TOKEN": "ivr-callback-token-0b3d",
    "ALIYUN_CCC_ACCESS_KEY_ID": "LTAI-key-id-9d8c",
    "ALIYUN_CCC_ACCESS_KEY_SECRET": "ccc-access-secret-1a2b",
    "HUAWEI_ODFS_APP_KEY": "huawei-tenant",
    "HUAWEI_ODFS_APP_SECRET": "huawei-app-secret-3c4d",
    "HUAWEI_ODFS_AUTH_TOKENS": "huawei-static-token-5e6f",
    "HUAWEI_ASR_REDIS_URL": "redis://:redis-pass-7a8b@127.0.0.1:9/0",
    "TELNYX_API_KEY": "KEYtelnyx-secret-9c0d",
    "TELNYX_SKIP_SIGNATURE": "true",
}
_SECRET_VALUES = [
    "srv-token-5f1e9a",
    "srv-token-second-77c2",
    "ivr-callback-token-0b3d",
    "ccc-access-secret-1a2b",
    "huawei-app-secret-3c4d",
    "huawei-static-token-5e6f",
    "redis-pass-7a8b",
    "telnyx-secret-9c0d",
]


def _assert_no_secret(process: RunningServer) -> None:
    written = process.stderr_text() + "\n".join(process.stdout_lines())
    for secret in _SECRET_VALUES:
        assert secret not in written, f"{secret!r} reached the log:\n{written[-3000:]}"


def _exercise(vendor: str, base: str) -> None:
    """Requests that succeed and fail authentication, each with the secrets in play."""
    calls: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "aliyun-ivr": [
            ("GET", "/aliyun/ivr/callback", {"params": {"call_id": "s1", "token": "wrong"}}),
            (
                "GET",
                "/aliyun/ivr/callback",
                {
                    "params": {
                        "call_id": "s1",
                        "timestamp": "1763719200000",
                        "content_type": "callin",
                        "content": '{"caller":"13800138000","callee":"10086"}',
                        "token": SECRETS["ALIYUN_CALLBACK_TOKEN"],
                    }
                },
            ),
        ],
        "aliyun-ccc": [
            ("GET", "/", {"params": {"Action": "Dialogue", "AccessKeyId": "LTAI-key-id-9d8c"}}),
        ],
        "huawei-odfs": [
            (
                "POST",
                "/oifde/rest/api/gettoken",
                {
                    "json": {
                        "appKey": "huawei-tenant",
                        "appSecret": SECRETS["HUAWEI_ODFS_APP_SECRET"],
                    }
                },
            ),
            ("POST", "/oifde/rest/api/gettoken", {"json": {"appKey": "x", "appSecret": "y"}}),
            (
                "POST",
                "/oifde/rest/crs/process",
                {
                    "json": {
                        "userid": "s2",
                        "inaction": 8,
                        "inparams": {
                            "call_id": "s2",
                            "auth_token": "huawei-static-token-5e6f",
                            "call_sor_id": "13800138000",
                            "call_dst_id": "10086",
                        },
                    }
                },
            ),
        ],
        "telnyx": [
            ("POST", "/telnyx/webhooks", {"content": b"{}"}),
            # Answering it sends a command with the API key (to a closed port: retried, failed).
            (
                "POST",
                "/telnyx/webhooks",
                {"json": webhook("call.initiated", "v3:secret-test", direction="incoming")},
            ),
        ],
    }
    for method, path, options in calls[vendor]:
        httpx.request(method, f"{base}{path}", timeout=_BOUND_S, **options)


def test_secrets_never_reach_the_logs_even_at_debug() -> None:
    env = {**os.environ, **SECRETS, "DIALOGUE_LOG_LEVEL": "DEBUG"}
    with start_server(*MEMORY_SERVER_ARGS, env=env) as server:
        for vendor in ("aliyun-ivr", "aliyun-ccc", "huawei-odfs", "telnyx"):
            extra = {"TELNYX_API_BASE": f"http://{closed_port_address()}"}
            with start_gateway(
                vendor,
                "--listen",
                "127.0.0.1:0",
                "--server",
                server.address,
                env={**env, **extra},
            ) as gateway:
                _exercise(vendor, f"http://{gateway.address}")
                assert gateway.stop() == 0
                _assert_no_secret(gateway)
        assert server.stop() == 0
        _assert_no_secret(server)


def test_a_store_password_is_redacted_when_start_up_fails() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "server", "--listen", "127.0.0.1:0"],
        cwd=REPO_ROOT,
        env={
            **os.environ,
            "DIALOGUE_STORE": f"redis://:store-pass-4e5f@127.0.0.1:{port}/0",
            "DIALOGUE_LOG_LEVEL": "DEBUG",
        },
        capture_output=True,
        text=True,
        timeout=_BOUND_S,
        check=False,
    )
    assert result.returncode == 2
    assert "refusing to start" in result.stderr
    assert "store-pass-4e5f" not in result.stderr + result.stdout
