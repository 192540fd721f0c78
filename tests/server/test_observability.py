"""The server's metrics, turn log lines and traces.

In-process tests read the server's own registry; process tests scrape `--metrics-listen` and
read `--log-format json` lines from stderr, as a Prometheus and a log collector would.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import generate_latest

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from server.app import create_server
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.observability import ServerMetrics
from server.store import Snapshot, StoreUnavailableError, open_store
from server.store.memory import MemoryStore
from telemetry.logs import JsonFormatter, TextFormatter, configure_logging
from telemetry.masking import mask_phone
from telemetry.tracing import tracer_provider_from_env
from tests.support.grpc_server import request, serve
from tests.support.server_process import MEMORY_SERVER_ARGS, REPO_ROOT, start_server

_BOUND_S = 60
DECIDE = {"grpc_service": "dialogue.v1.DialogueService", "grpc_method": "DecideNextAction"}


def caller_request(call_id: str, request_id: str) -> pb.DecideNextActionRequest:
    message = request(call_id, request_id, call_started={})
    message.call.caller = "+8613800138000"
    return message


# -- metrics ------------------------------------------------------------------------------------


async def test_decisions_replays_failures_and_rpcs_are_counted() -> None:
    async with serve() as served:
        await served.decide(caller_request("obs-call-1", "r1"))
        await served.decide(caller_request("obs-call-1", "r1"))  # a retry: replayed
        with pytest.raises(grpc.aio.AioRpcError):
            await served.decide(pb.DecideNextActionRequest(call=pb.Call(call_id="obs-call-2")))
        metrics = served.running.metrics.registry
        decided = {
            "flow": "carrier-zh",
            "node": "main_menu",
            "action": "play_and_listen",
            "platform": "other",
        }
        assert metrics.get_sample_value("dialogue_decisions_total", decided) == 1
        assert metrics.get_sample_value("dialogue_replays_total") == 1
        for outcome in ("decided", "replayed", "invalid_argument"):
            assert (
                metrics.get_sample_value(
                    "dialogue_turn_duration_seconds_count", {"outcome": outcome}
                )
                == 1
            )
        assert (
            metrics.get_sample_value("grpc_server_handled_total", {**DECIDE, "grpc_code": "OK"})
            == 2
        )
        assert (
            metrics.get_sample_value(
                "grpc_server_handled_total", {**DECIDE, "grpc_code": "INVALID_ARGUMENT"}
            )
            == 1
        )
        assert metrics.get_sample_value("grpc_server_handling_seconds_count", DECIDE) == 3
        assert metrics.get_sample_value("grpc_server_started_total", DECIDE) == 3
        exposition = generate_latest(metrics).decode()
    # Labels never carry call or request ids, nor phone numbers.
    assert "obs-call" not in exposition
    assert "13800138000" not in exposition


async def test_health_and_reflection_are_counted_but_unknown_methods_add_no_labels() -> None:
    async with serve() as served:
        await health_pb2_grpc.HealthStub(served.channel).Check(
            health_pb2.HealthCheckRequest(), timeout=_BOUND_S
        )
        invented = served.channel.unary_unary("/evil.Service/Method123456")
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await invented(b"", timeout=_BOUND_S)
        assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
        registry = served.running.metrics.registry
        exposition = generate_latest(registry).decode()
    check = {"grpc_service": "grpc.health.v1.Health", "grpc_method": "Check", "grpc_code": "OK"}
    assert registry.get_sample_value("grpc_server_handled_total", check) == 1
    assert "evil" not in exposition


class _FailingStore(MemoryStore):
    """A memory store whose reads fail while `down` is set."""

    down = False

    async def read(self, call_id: str, request_id: str) -> Snapshot:
        if self.down:
            raise StoreUnavailableError("disk on fire")
        return await super().read(call_id, request_id)


async def test_store_errors_are_counted_by_operation() -> None:
    store = _FailingStore()
    metrics = ServerMetrics()
    running = await create_server("127.0.0.1:0", load_catalog(DEMO_FLOWS), store, metrics=metrics)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        store.down = True
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await dialogue_pb2_grpc.DialogueServiceStub(channel).DecideNextAction(
                request("c1", "r1", call_started={}), timeout=_BOUND_S
            )
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()
        await running.server.stop(None)
    assert (
        metrics.registry.get_sample_value("dialogue_store_errors_total", {"operation": "read"}) == 1
    )
    assert (
        metrics.registry.get_sample_value(
            "dialogue_turn_duration_seconds_count", {"outcome": "unavailable"}
        )
        == 1
    )


# -- logs ---------------------------------------------------------------------------------------


async def test_one_log_line_per_turn_with_what_support_needs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dialogue.turn")
    async with serve() as served:
        await served.decide(caller_request("log-call-1", "r1"))
        await served.decide(caller_request("log-call-1", "r1"))
    lines = [r for r in caplog.records if r.name == "dialogue.turn"]
    assert len(lines) == 2
    first = json.loads(JsonFormatter().format(lines[0]))
    assert first["message"] == "turn"
    assert {key: first[key] for key in ("call_id", "request_id", "flow", "node", "event")} == {
        "call_id": "log-call-1",
        "request_id": "r1",
        "flow": "carrier-zh",
        "node": "main_menu",
        "event": "call_started",
    }
    assert (first["action"], first["outcome"], first["replay"]) == (
        "play_and_listen",
        "decided",
        False,
    )
    assert first["version"]
    assert first["duration_ms"] >= 0
    assert first["caller"] == "+861********00"  # masked, like the gateways mask
    second = json.loads(JsonFormatter().format(lines[1]))
    assert (second["outcome"], second["replay"]) == ("replayed", True)


def test_both_formats_mask_phone_numbers_in_messages_fields_and_tracebacks() -> None:
    try:
        raise ValueError("bad number 13800138000")
    except ValueError:
        record = logging.LogRecord(
            "dialogue.test", logging.WARNING, __file__, 1, "caller %s", ("+8613800138000",), None
        )
        record.exc_info = sys.exc_info()
    record.fields = {"callee": "13912345678", "call_id": "1234567890123456", "note": "two words"}
    document = json.loads(JsonFormatter().format(record))
    assert document["message"] == "caller +861********00"
    assert (document["callee"], document["call_id"]) == ("139******78", "1234567890123456")
    assert "13800138000" not in document["exception"]
    text = TextFormatter().format(record)
    first_line = text.splitlines()[0]
    assert first_line.endswith(
        'caller +861********00 callee=139******78 call_id=1234567890123456 note="two words"'
    )
    assert "13800138000" not in text
    assert mask_phone("+14155550123 and 13800138000") == "+141******23 and 138******00"


def test_configure_logging_writes_json_lines_at_the_level() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("WARNING", "json", stream)
        logging.getLogger("dialogue.test").info("hidden")
        logging.getLogger("dialogue.test").warning("shown %d", 1)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["message"] == "shown 1"


# -- tracing ------------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


async def test_the_server_span_continues_the_callers_traceparent(
    spans: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = spans
    store = MemoryStore()
    running = await create_server("127.0.0.1:0", load_catalog(DEMO_FLOWS), store, tracer=tracer)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    try:
        await dialogue_pb2_grpc.DialogueServiceStub(channel).DecideNextAction(
            request("span-1", "r1", call_started={}),
            timeout=_BOUND_S,
            metadata=(("traceparent", f"00-{trace_id}-{parent_id}-01"),),
        )
    finally:
        await channel.close()
        await running.server.stop(None)
    (span,) = exporter.get_finished_spans()
    assert span.name == "dialogue.v1.DialogueService/DecideNextAction"
    assert span.kind == trace.SpanKind.SERVER
    assert span.parent is not None
    assert (f"{span.context.trace_id:032x}", f"{span.parent.span_id:016x}") == (trace_id, parent_id)
    assert span.attributes is not None
    assert span.attributes["dialogue.node"] == "main_menu"
    assert span.attributes["rpc.grpc.status_code"] == 0


def test_tracing_is_off_unless_asked_and_refuses_unknown_exporters() -> None:
    assert tracer_provider_from_env({}, "dialogue-server") is None
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER"):
        tracer_provider_from_env(
            {"DIALOGUE_OTEL": "1", "OTEL_TRACES_EXPORTER": "zipkin"}, "dialogue-server"
        )
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        tracer_provider_from_env(
            {"DIALOGUE_OTEL": "1", "OTEL_EXPORTER_OTLP_PROTOCOL": "carrier-pigeon"},
            "dialogue-server",
        )
    provider = tracer_provider_from_env(
        {"DIALOGUE_OTEL": "1", "OTEL_TRACES_EXPORTER": "console"}, "dialogue-server"
    )
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "dialogue-server"
    provider.shutdown()


# -- as a process -------------------------------------------------------------------------------

_METRICS_LINE = re.compile(r"metrics on http://(?P<address>[\d.]+:\d+)/metrics")


def _metrics_addresses(text: str) -> list[str]:
    found = []
    for line in text.splitlines():
        try:
            message = json.loads(line)["message"]
        except (ValueError, KeyError, TypeError):
            message = line
        match = _METRICS_LINE.search(message)
        if match:
            found.append(match.group("address"))
    return found


def test_the_process_serves_metrics_and_logs_json_lines() -> None:
    args = (*MEMORY_SERVER_ARGS, "--metrics-listen", "127.0.0.1:0", "--log-format", "json")
    with start_server(*args) as server:
        (address,) = _metrics_addresses(server.stderr_text())
        with grpc.insecure_channel(server.address) as channel:
            dialogue_pb2_grpc.DialogueServiceStub(channel).DecideNextAction(
                caller_request("proc-call-1", "r1"), timeout=_BOUND_S
            )
        scraped = httpx.get(f"http://{address}/metrics", timeout=_BOUND_S)
        assert scraped.status_code == 200
        assert 'dialogue_decisions_total{action="play_and_listen"' in scraped.text
        assert 'grpc_server_handled_total{grpc_code="OK"' in scraped.text
        assert server.stop() == 0
        lines = [json.loads(line) for line in server.stderr_text().splitlines() if line.strip()]
    turns = [line for line in lines if line["logger"] == "dialogue.turn"]
    assert len(turns) == 1
    assert (turns[0]["call_id"], turns[0]["caller"]) == ("proc-call-1", "+861********00")
    assert {line["level"] for line in lines} <= {"INFO", "WARNING"}


def test_an_unusable_metrics_address_stops_start_up() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "server",
                *MEMORY_SERVER_ARGS,
                "--metrics-listen",
                f"127.0.0.1:{port}",
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=_BOUND_S,
            check=False,
        )
    assert result.returncode == 2
    assert f"refusing to start: cannot serve metrics on 127.0.0.1:{port}" in result.stderr


async def test_each_worker_serves_its_own_metrics(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        listen = f"127.0.0.1:{probe.getsockname()[1]}"
    store = f"sqlite://{tmp_path / 'calls.db'}"
    # Created beforehand: two workers creating one SQLite file at once may find it locked.
    created = open_store(store)
    await created.ping()
    await created.close()
    args = (
        "--listen",
        listen,
        "--store",
        store,
        "--workers",
        "2",
        "--metrics-listen",
        "127.0.0.1:0",
    )
    with start_server(*args) as server:
        deadline = time.monotonic() + _BOUND_S
        while len(_metrics_addresses(server.stderr_text())) < 2:
            assert time.monotonic() < deadline, server.describe_failure()
            time.sleep(0.05)
        addresses = _metrics_addresses(server.stderr_text())
        assert len(set(addresses)) == 2
        for address in addresses:
            assert httpx.get(f"http://{address}/metrics", timeout=_BOUND_S).status_code == 200
