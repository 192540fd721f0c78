"""A gateway's metrics, request log lines and traces.

Metrics are read the way Prometheus reads them, from `GET /metrics`; traces with the SDK's
in-memory exporter in process, and with the console exporter across real processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from gateways.app import create_vendor_app
from gateways.config import parse_config
from gateways.decider import Decider
from gateways.observability import GatewayMetrics
from gateways.telnyx.commands import CallControl, RetryPolicy
from server.app import create_server
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.store import open_store
from telemetry.logs import JsonFormatter, TextFormatter
from telemetry.tracing import tracer_provider_from_env
from tests.gateways.telnyx.fake_api import API_KEY, serve_fake
from tests.gateways.telnyx.harness import public_key_text
from tests.support.gateway import TEST_FALLBACK, QuietServer, serve_gateway
from tests.support.grpc_server import serve
from tests.support.ports import closed_port_address
from tests.support.server_process import MEMORY_SERVER_ARGS, start_gateway, start_server

_BOUND_S = 60
CALLBACK = "/aliyun/ivr/callback"


def callin(call_id: str, **extra: str) -> dict[str, str]:
    return {
        "call_id": call_id,
        "timestamp": "1763719200000",
        "content_type": "callin",
        "content": json.dumps({"caller": "13800138000", "callee": "10086", "orgcallee": "10086"}),
        **extra,
    }


def sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    """The value of one sample in a Prometheus exposition, or None when absent."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return float(found.value)
    return None


# -- metrics ------------------------------------------------------------------------------------


async def test_metrics_count_requests_and_decisions_without_call_ids() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}") as client,
    ):
        answered = await client.get(CALLBACK, params=callin("metrics-call-77"))
        assert answered.status_code == 200
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    request = {"vendor": "aliyun-ivr", "route": CALLBACK, "method": "GET", "status": "200"}
    assert sample(text, "dialogue_gateway_http_requests_total", request) == 1
    assert (
        sample(
            text,
            "dialogue_gateway_http_request_duration_seconds_count",
            {"vendor": "aliyun-ivr", "route": CALLBACK},
        )
        == 1
    )
    assert (
        sample(text, "dialogue_gateway_decision_duration_seconds_count", {"outcome": "decided"})
        == 1
    )
    assert "metrics-call-77" not in text
    assert "13800138000" not in text


async def test_fallbacks_are_counted_by_reason() -> None:
    async with serve_gateway("aliyun-ivr", closed_port_address(), deadline_s=2.0) as client:
        answered = await client.get(CALLBACK, params=callin("dead-1"))
        assert answered.status_code == 200
        text = (await client.get("/metrics")).text
    assert sample(text, "dialogue_gateway_fallbacks_total", {"reason": "UNAVAILABLE"}) == 1
    assert (
        sample(text, "dialogue_gateway_decision_duration_seconds_count", {"outcome": "fallback"})
        == 1
    )


async def test_unknown_paths_and_methods_add_no_labels() -> None:
    async with serve_gateway("aliyun-ivr", closed_port_address()) as client:
        await client.get("/no/such/13800138000/path")
        await client.request("PROPFIND", CALLBACK)
        text = (await client.get("/metrics")).text
    unmatched = {"vendor": "aliyun-ivr", "route": "unmatched", "method": "GET", "status": "404"}
    assert sample(text, "dialogue_gateway_http_requests_total", unmatched) == 1
    odd = {"vendor": "aliyun-ivr", "route": CALLBACK, "method": "other", "status": "405"}
    assert sample(text, "dialogue_gateway_http_requests_total", odd) == 1
    assert "13800138000" not in text
    assert "PROPFIND" not in text


_TELNYX_KEY = Ed25519PrivateKey.generate()


@pytest.mark.parametrize(
    ("vendor", "env", "sent", "reason"),
    [
        (
            "aliyun-ivr",
            {"ALIYUN_CALLBACK_TOKEN": "right-token"},
            ("GET", CALLBACK, callin("auth-1", token="wrong-token")),
            "token",
        ),
        (
            "aliyun-ccc",
            {"ALIYUN_CCC_ACCESS_KEY_ID": "LTAIexample", "ALIYUN_CCC_ACCESS_KEY_SECRET": "secret"},
            ("GET", "/", {"Action": "Dialogue", "CallId": "c1", "InstanceId": "i1"}),
            "MissingParameter",
        ),
        (
            "huawei-odfs",
            {"HUAWEI_ODFS_AUTH_TOKENS": "right-token"},
            (
                "POST",
                "/oifde/rest/crs/process",
                {"userid": "u1", "inaction": 8, "inparams": {"call_id": "u1", "auth_token": "no"}},
            ),
            "token_invalid",
        ),
        (
            "huawei-odfs",
            {"HUAWEI_ODFS_APP_KEY": "tenant", "HUAWEI_ODFS_APP_SECRET": "app-secret"},
            ("POST", "/oifde/rest/api/gettoken", {"appKey": "tenant", "appSecret": "guess"}),
            "credentials",
        ),
        (
            "telnyx",
            {"TELNYX_API_KEY": "key", "TELNYX_PUBLIC_KEY": public_key_text(_TELNYX_KEY)},
            ("POST", "/telnyx/webhooks", {"data": {}}),
            "signature",
        ),
    ],
)
async def test_signature_and_auth_failures_are_counted_by_vendor_and_reason(
    vendor: str, env: dict[str, str], sent: tuple[str, str, dict[str, Any]], reason: str
) -> None:
    method, path, params = sent
    async with serve_gateway(vendor, closed_port_address(), env) as client:
        if method == "GET":
            refused = await client.get(path, params=params)
        else:
            refused = await client.post(path, json=params)
        assert refused.status_code in (400, 401, 403, 404), refused.text
        text = (await client.get("/metrics")).text
    failures = {"vendor": vendor, "reason": reason}
    assert sample(text, "dialogue_gateway_auth_failures_total", failures) == 1


async def test_telnyx_command_failures_are_exposed_by_code() -> None:
    async with serve_fake() as fake:
        control = CallControl(API_KEY, fake.base_url, RetryPolicy(attempts=1))
        metrics = GatewayMetrics()
        metrics.watch_commands(control)
        try:
            fake.fail_next(1, status=422, code="90018")
            fake.fail_next(1, status=400, code="90015")
            for command_id in ("a", "b", "c"):
                body = {"payload": "Hi.", "voice": "Telnyx.KokoroTTS.af", "command_id": command_id}
                await control.send("ccid", "speak", body)
        finally:
            await control.close()
    registry = metrics.registry
    assert (
        registry.get_sample_value("dialogue_gateway_telnyx_commands_total", {"outcome": "accepted"})
        == 1
    )
    for outcome, code in (("call_ended", "90018"), ("refused", "90015")):
        assert (
            registry.get_sample_value(
                "dialogue_gateway_telnyx_command_failures_total", {"outcome": outcome, "code": code}
            )
            == 1
        )


# -- logs ---------------------------------------------------------------------------------------


async def test_one_log_line_per_request_masked_and_without_the_query(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dialogue.gateway.http")
    env = {"ALIYUN_CALLBACK_TOKEN": "query-token-xyz"}
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}", env) as client,
    ):
        await client.get(CALLBACK, params=callin("13912345678", token="query-token-xyz"))
        await client.get("/healthz")  # probes log at DEBUG only
    (line,) = [r for r in caplog.records if r.name == "dialogue.gateway.http"]
    fields: dict[str, Any] = line.fields  # type: ignore[attr-defined]
    assert (fields["route"], fields["status"], fields["vendor"]) == (CALLBACK, 200, "aliyun-ivr")
    assert fields["request_id"]
    assert fields["fallback"] == ""
    assert fields["decision_ms"] >= 0
    document = json.loads(JsonFormatter().format(line))
    assert document["call_id"] == "139******78"
    assert "query-token-xyz" not in json.dumps(document) + TextFormatter().format(line)


# -- tracing ------------------------------------------------------------------------------------


@pytest.fixture
def tracing() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


@contextlib.asynccontextmanager
async def _serve_app(decider: Decider, vendor: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_vendor_app(vendor, decider, {})
    http = QuietServer(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    task = asyncio.create_task(http.serve())
    async with asyncio.timeout(30):
        while not http.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
    port = http.servers[0].sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        http.should_exit = True
        await task


async def test_the_server_span_is_a_child_of_the_gateway_span(
    tracing: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = tracing
    store = open_store("memory://")
    running = await create_server("127.0.0.1:0", load_catalog(DEMO_FLOWS), store, tracer=tracer)
    decider = Decider(f"127.0.0.1:{running.port}", 5.0, TEST_FALLBACK, tracer=tracer)
    try:
        async with _serve_app(decider, "aliyun-ivr") as client:
            assert (await client.get(CALLBACK, params=callin("trace-1"))).status_code == 200
    finally:
        await running.server.stop(None)
        await store.close()
    finished: tuple[ReadableSpan, ...] = exporter.get_finished_spans()
    (client_span,) = [s for s in finished if s.kind == trace.SpanKind.CLIENT]
    servers = [s for s in finished if s.kind == trace.SpanKind.SERVER]
    (http,) = [s for s in servers if s.name == f"GET {CALLBACK}"]
    (server,) = [s for s in servers if s.name == "dialogue.v1.DialogueService/DecideNextAction"]
    assert client_span.parent is not None
    assert server.parent is not None
    assert client_span.parent.span_id == http.context.span_id
    assert server.parent.span_id == client_span.context.span_id
    assert server.context.trace_id == client_span.context.trace_id == http.context.trace_id


def _console_spans(text: str) -> list[dict[str, Any]]:
    """The span objects the console exporter wrote among the log lines."""
    decoder = json.JSONDecoder()
    found = []
    position = 0
    while (start := text.find("{", position)) != -1:
        try:
            value, position = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(value, dict) and "context" in value and "parent_id" in value:
            found.append(value)
    return found


def test_processes_carry_the_trace_from_gateway_to_server() -> None:
    """DIALOGUE_OTEL=1 with the console exporter: the server's span names the gateway's
    client span as its parent, across two real processes."""
    env = {**os.environ, "DIALOGUE_OTEL": "1", "OTEL_TRACES_EXPORTER": "console"}
    with start_server(*MEMORY_SERVER_ARGS, env=env) as server:
        with start_gateway(
            "aliyun-ivr",
            "--listen",
            "127.0.0.1:0",
            "--server",
            server.address,
            "--log-format",
            "json",
            env=env,
        ) as gateway:
            answered = httpx.get(
                f"http://{gateway.address}{CALLBACK}", params=callin("otel-1"), timeout=_BOUND_S
            )
            assert answered.status_code == 200
            assert gateway.stop() == 0
            gateway_spans = _console_spans(gateway.stderr_text())
            log_lines = [
                json.loads(line)
                for line in gateway.stderr_text().splitlines()
                if line.startswith('{"time"')
            ]
        assert server.stop() == 0
        server_spans = _console_spans(server.stderr_text())
    (client_span,) = [s for s in gateway_spans if s["kind"] == "SpanKind.CLIENT"]
    (server_span,) = [
        s for s in server_spans if s["name"] == "dialogue.v1.DialogueService/DecideNextAction"
    ]
    assert server_span["parent_id"] == client_span["context"]["span_id"]
    assert server_span["context"]["trace_id"] == client_span["context"]["trace_id"]
    (request_line,) = [line for line in log_lines if line["logger"] == "dialogue.gateway.http"]
    # The request's log line carries its trace id, to go from a log line to the trace.
    assert request_line["trace_id"] == client_span["context"]["trace_id"].removeprefix("0x")


def test_tracing_is_off_unless_asked() -> None:
    assert tracer_provider_from_env({}, "dialogue-gateway") is None
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        tracer_provider_from_env({"DIALOGUE_OTEL": "1", "OTEL_TRACES_EXPORTER": "jaeger"}, "x")


# -- configuration and the separate metrics port ------------------------------------------------


def test_observability_settings_from_flags_and_environment() -> None:
    vendor_listens = {"aliyun-ivr": "127.0.0.1:8081"}
    defaults = parse_config(vendor_listens, ["aliyun-ivr"], env={})
    assert (defaults.log_format, defaults.metrics_listen) == ("text", "")
    env = {"DIALOGUE_LOG_FORMAT": "json", "DIALOGUE_GATEWAY_METRICS_LISTEN": "127.0.0.1:9465"}
    configured = parse_config(vendor_listens, ["aliyun-ivr"], env=env)
    assert (configured.log_format, configured.metrics_listen) == ("json", "127.0.0.1:9465")
    for argv in (["--log-format", "xml"], ["--metrics-listen", "nowhere"]):
        with pytest.raises(SystemExit) as exited:
            parse_config(vendor_listens, ["aliyun-ivr", *argv], env={})
        assert exited.value.code == 2


_METRICS_PORT = re.compile(r"metrics on port (\d+) at /metrics")


def test_metrics_on_their_own_port_leave_the_callback_port() -> None:
    with (
        start_server(*MEMORY_SERVER_ARGS) as server,
        start_gateway(
            "aliyun-ivr",
            "--listen",
            "127.0.0.1:0",
            "--server",
            server.address,
            "--metrics-listen",
            "127.0.0.1:0",
        ) as gateway,
    ):
        deadline = time.monotonic() + _BOUND_S
        while not (found := _METRICS_PORT.search(gateway.stderr_text())):
            assert time.monotonic() < deadline, gateway.describe_failure()
            time.sleep(0.05)
        httpx.get(f"http://{gateway.address}{CALLBACK}", params=callin("port-1"), timeout=_BOUND_S)
        separate = httpx.get(f"http://127.0.0.1:{found.group(1)}/metrics", timeout=_BOUND_S)
        assert separate.status_code == 200
        assert 'route="/aliyun/ivr/callback"' in separate.text
        on_callback_port = httpx.get(f"http://{gateway.address}/metrics", timeout=_BOUND_S)
        assert on_callback_port.status_code == 404
