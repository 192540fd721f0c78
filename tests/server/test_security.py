"""TLS, mutual TLS and bearer tokens on the server's port; refusing bad security settings.

Certificates come from tests/support/certs.py (fresh CAs per test module). The in-process tests
use a real gRPC channel; the grpcurl test is what an operator does with TLS and a token.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from server.app import RunningServer, create_server
from server.config import DEMO_FLOWS, parse_config
from server.engine.catalog import load_catalog
from server.security import ConfigurationError, ServerSecurity, load_server_credentials
from server.store import open_store
from tests.support.certs import Pki, make_pki
from tests.support.grpc_server import request
from tests.support.server_process import MEMORY_SERVER_ARGS, REPO_ROOT, start_server

_BOUND_S = 60
GRPCURL = Path(sys.executable).parent / "grpcurl"
TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@asynccontextmanager
async def serving(security: ServerSecurity) -> AsyncIterator[RunningServer]:
    store = open_store("memory://")
    running = await create_server("127.0.0.1:0", load_catalog(DEMO_FLOWS), store, security=security)
    try:
        yield running
    finally:
        await running.server.stop(None)
        await store.close()


def tls_channel(port: int, ca: Path, client: tuple[Path, Path] | None = None) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca.read_bytes(),
        private_key=client[1].read_bytes() if client else None,
        certificate_chain=client[0].read_bytes() if client else None,
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{port}", credentials)


async def decide(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()
) -> pb.DecideNextActionResponse:
    stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
    response: pb.DecideNextActionResponse = await stub.DecideNextAction(
        request("tls-1", "r1", call_started={}), timeout=_BOUND_S, metadata=metadata
    )
    return response


async def failure_of(
    channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        # Bounds a slow machine only: a refused handshake fails the call at once.
        await dialogue_pb2_grpc.DialogueServiceStub(channel).DecideNextAction(
            request("tls-x", "r1", call_started={}), timeout=20, metadata=metadata
        )
    code: grpc.StatusCode = failed.value.code()
    return code


# -- TLS and mutual TLS -------------------------------------------------------------------------


async def test_tls_serves_a_client_that_trusts_the_ca(pki: Pki) -> None:
    credentials = load_server_credentials(pki.server.cert, pki.server.key, None)
    async with serving(ServerSecurity(credentials)) as running:
        channel = tls_channel(running.port, pki.ca)
        try:
            assert (await decide(channel)).diagnostics.node_id == "main_menu"
        finally:
            await channel.close()


async def test_a_client_trusting_another_ca_is_not_connected(pki: Pki) -> None:
    credentials = load_server_credentials(pki.server.cert, pki.server.key, None)
    async with serving(ServerSecurity(credentials)) as running:
        channel = tls_channel(running.port, pki.stranger_ca)
        try:
            assert await failure_of(channel) == grpc.StatusCode.UNAVAILABLE
        finally:
            await channel.close()


async def test_a_plaintext_client_is_not_served_by_a_tls_port(pki: Pki) -> None:
    credentials = load_server_credentials(pki.server.cert, pki.server.key, None)
    async with serving(ServerSecurity(credentials)) as running:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        try:
            assert await failure_of(channel) == grpc.StatusCode.UNAVAILABLE
        finally:
            await channel.close()


async def test_mutual_tls_serves_only_clients_with_a_certificate_from_the_client_ca(
    pki: Pki,
) -> None:
    credentials = load_server_credentials(pki.server.cert, pki.server.key, pki.ca)
    async with serving(ServerSecurity(credentials)) as running:
        good = tls_channel(running.port, pki.ca, (pki.client.cert, pki.client.key))
        anonymous = tls_channel(running.port, pki.ca)
        stranger = tls_channel(
            running.port, pki.ca, (pki.stranger_client.cert, pki.stranger_client.key)
        )
        try:
            assert (await decide(good)).diagnostics.node_id == "main_menu"
            assert await failure_of(anonymous) == grpc.StatusCode.UNAVAILABLE
            assert await failure_of(stranger) == grpc.StatusCode.UNAVAILABLE
        finally:
            for channel in (good, anonymous, stranger):
                await channel.close()


# -- bearer tokens ------------------------------------------------------------------------------


async def test_tokens_refuse_missing_and_wrong_tokens_with_unauthenticated() -> None:
    async with serving(ServerSecurity(tokens=(TOKEN, "another"))) as running:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        try:
            assert await failure_of(channel) == grpc.StatusCode.UNAUTHENTICATED
            for offered in ("Bearer wrong", f"Basic {TOKEN}", "Bearer ", TOKEN):
                metadata = (("authorization", offered),)
                assert await failure_of(channel, metadata) == grpc.StatusCode.UNAUTHENTICATED
            for token in (TOKEN, "another"):
                response = await decide(channel, (("authorization", f"Bearer {token}"),))
                assert response.diagnostics.node_id == "main_menu"
        finally:
            await channel.close()
        metrics = running.metrics.registry
        assert metrics.get_sample_value("dialogue_auth_failures_total", {"reason": "missing"}) == 1
        assert metrics.get_sample_value("dialogue_auth_failures_total", {"reason": "invalid"}) == 4
        refused = {
            "grpc_service": "dialogue.v1.DialogueService",
            "grpc_method": "DecideNextAction",
            "grpc_code": "UNAUTHENTICATED",
        }
        assert metrics.get_sample_value("grpc_server_handled_total", refused) == 5


async def test_the_refusal_never_echoes_the_offered_token() -> None:
    async with serving(ServerSecurity(tokens=(TOKEN,))) as running:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
        try:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await stub.GetCall(
                    pb.GetCallRequest(call_id="c1"),
                    timeout=_BOUND_S,
                    metadata=(("authorization", "Bearer leaked-guess-123"),),
                )
        finally:
            await channel.close()
    assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "leaked-guess-123" not in (failed.value.details() or "")


async def test_health_stays_open_and_reflection_needs_the_token() -> None:
    async with serving(ServerSecurity(tokens=(TOKEN,))) as running:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        try:
            health = health_pb2_grpc.HealthStub(channel)
            check = await health.Check(health_pb2.HealthCheckRequest(), timeout=_BOUND_S)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            reflect = channel.stream_stream(
                "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                request_serializer=None,
                response_deserializer=None,
            )
            # list_services = "" (field 7, empty string).
            call = reflect(iter([b"\x3a\x00"]), timeout=_BOUND_S)
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                async for _ in call:
                    pass
            assert failed.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            await channel.close()


# -- grpcurl, as an operator would --------------------------------------------------------------


def grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRPCURL), "-connect-timeout", "30", "-max-time", "60", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_grpcurl_with_mutual_tls_and_a_token(pki: Pki) -> None:
    """Reflection answers only with the token, so grpcurl needs it even for health (whose RPC
    is open: it needs reflection for the schema); no client certificate, no connection."""
    args = (
        *MEMORY_SERVER_ARGS,
        "--tls-cert",
        str(pki.server.cert),
        "--tls-key",
        str(pki.server.key),
        "--tls-client-ca",
        str(pki.ca),
    )
    env = {**os.environ, "DIALOGUE_AUTH_TOKENS": TOKEN}
    with start_server(*args, env=env) as server:
        tls = ("-cacert", str(pki.ca), "-cert", str(pki.client.cert), "-key", str(pki.client.key))
        port = server.address.rsplit(":", 1)[1]
        address = f"localhost:{port}"
        listed = grpcurl(*tls, "-H", f"authorization: Bearer {TOKEN}", address, "list")
        assert listed.returncode == 0, listed.stderr
        assert "dialogue.v1.DialogueService" in listed.stdout.split()
        refused = grpcurl(*tls, address, "list")
        assert refused.returncode != 0
        assert "Unauthenticated" in refused.stderr, refused.stderr
        bearer = ("-H", f"authorization: Bearer {TOKEN}")
        health = grpcurl(*tls, *bearer, address, "grpc.health.v1.Health/Check")
        assert health.returncode == 0, health.stderr
        assert "SERVING" in health.stdout
        without_token = grpcurl(*tls, address, "grpc.health.v1.Health/Check")
        assert "failed to query for service descriptor" in without_token.stderr
        no_certificate = grpcurl("-cacert", str(pki.ca), *bearer, address, "list")
        assert no_certificate.returncode != 0
        assert "dialogue.v1.DialogueService" not in no_certificate.stdout
        assert TOKEN not in server.stderr_text()


# -- refusing settings that cannot work ---------------------------------------------------------


def test_bad_tls_settings_are_refused_with_what_is_wrong(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n", encoding="utf-8")
    cases = [
        ((pki.server.cert, None, None), "set both --tls-cert and --tls-key"),
        ((None, None, pki.ca), "--tls-client-ca needs --tls-cert and --tls-key"),
        ((missing, pki.server.key, None), f"--tls-cert {missing}: cannot read"),
        ((pki.server.cert, not_pem, None), f"--tls-key {not_pem}: not a PEM file"),
        ((pki.server.cert, pki.client.key, None), "is not the key of the certificate"),
        ((pki.server.cert, pki.server.key, pki.server.key), "not PEM certificates"),
    ]
    for (cert, key, client_ca), message in cases:
        with pytest.raises(ConfigurationError) as refused:
            load_server_credentials(cert, key, client_ca)
        assert message in str(refused.value)


def test_tokens_come_from_the_environment_only_and_are_not_in_the_repr() -> None:
    config = parse_config([], env={"DIALOGUE_AUTH_TOKENS": " a-token , , b-token "})
    assert config.auth_tokens == ("a-token", "b-token")
    assert "a-token" not in repr(config)
    with pytest.raises(SystemExit):
        parse_config(["--auth-tokens", "x"], env={})


def test_a_missing_tls_file_stops_start_up_with_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    result = subprocess.run(
        [sys.executable, "-m", "server", *MEMORY_SERVER_ARGS],
        cwd=REPO_ROOT,
        env={**os.environ, "DIALOGUE_TLS_CERT": str(missing), "DIALOGUE_TLS_KEY": str(missing)},
        capture_output=True,
        text=True,
        timeout=_BOUND_S,
        check=False,
    )
    assert result.returncode == 2
    assert f"refusing to start: --tls-cert {missing}: cannot read" in result.stderr
    assert "listening" not in result.stdout
