"""What the server tells operators: Prometheus metrics, one log line per turn, traces.

- Metrics live in a registry of their own per server (tests run many servers in one process),
  served on a separate port by `start_metrics_http` when `--metrics-listen` is set. Labels take
  only values from bounded sets — flows, nodes, actions, platforms, registered methods, status
  codes — never call or request ids.
- Logs are plain text for people or one JSON object per line (`--log-format json`); phone
  numbers are masked in every message and field, as the gateways mask theirs.
- Tracing is off unless `DIALOGUE_OTEL=1`; then each RPC gets a server span that continues the
  W3C `traceparent` a gateway sent in the gRPC metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Final

import grpc
from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.state import CallState

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "ObservingInterceptor",
    "ServerMetrics",
    "Turn",
    "configure_logging",
    "mask_phone",
    "observe_turn",
    "start_metrics_http",
    "tracer_provider_from_env",
]

# Turns take milliseconds; gateways give up at 500 ms by default, hooks may take seconds.
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
# Status codes that mean the server failed, not the client (OpenTelemetry's gRPC conventions).
_SERVER_FAULTS: Final = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

_turn_log = logging.getLogger("dialogue.turn")


# -- masking ------------------------------------------------------------------------------------

# The gateways' rule (gateways/masking.py), repeated so the server does not import a gateway:
# E.164 numbers and Chinese mobile numbers; other digit runs (call ids) stay whole.
_PHONE = re.compile(r"\+\d{6,15}|(?<!\d)1[3-9]\d{9}(?!\d)")


def mask_phone(text: str) -> str:
    """Masks every phone number in text, keeping the first 3 (4 with '+') and last 2 digits."""
    return _PHONE.sub(_masked, text)


def _masked(found: re.Match[str]) -> str:
    number = found.group()
    head = 4 if number.startswith("+") else 3
    return number[:head] + "*" * (len(number) - head - 2) + number[-2:]


# -- logs ---------------------------------------------------------------------------------------

# Hex ids would be corrupted by masking a digit run inside them.
_UNMASKED_FIELDS: Final = frozenset({"trace_id", "span_id", "duration_ms"})


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
    for key, value in fields.items():
        if isinstance(value, str) and key not in _UNMASKED_FIELDS:
            fields[key] = mask_phone(value)
    return fields


def _trace_ids() -> dict[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message key=value …`, phone numbers masked."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = mask_phone(super().format(record))
        fields = _fields_of(record)
        if not fields:
            return line
        # Tracebacks come last, so the fields go onto the first line.
        first, newline, rest = line.partition("\n")
        pairs = " ".join(f"{key}={_text(value)}" for key, value in fields.items())
        return f"{first} {pairs}{newline}{rest}"


def _text(value: object) -> str:
    text = str(value)
    # Quoted when it would not read as one value: empty, or with spaces, quotes or newlines.
    plain = text and not any(c.isspace() or c == '"' for c in text)
    return text if plain else json.dumps(text, ensure_ascii=False)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's fields, trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_phone(record.getMessage()),
        }
        document.update(_fields_of(record))
        document.update(_trace_ids())
        if record.exc_info:
            document["exception"] = mask_phone(
                "".join(traceback.format_exception(*record.exc_info))
            )
        return json.dumps(document, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: str, stream: IO[str] | None = None) -> None:
    """Sends every log record to stderr (or stream) as text or JSON lines, at level."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


# -- metrics ------------------------------------------------------------------------------------


class ServerMetrics:
    """The server's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "dialogue_decisions",
            "Decisions made (retries answered from the store excluded), by flow, node reached, "
            "action and platform.",
            ["flow", "node", "action", "platform"],
            registry=r,
        )
        self.turn_seconds = Histogram(
            "dialogue_turn_duration_seconds",
            "Time to answer DecideNextAction, by outcome (decided, replayed, or the status code).",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.replays = Counter(
            "dialogue_replays",
            "Retried requests answered with the stored response.",
            registry=r,
        )
        self.write_conflicts = Counter(
            "dialogue_store_write_conflicts",
            "Turns decided again because another replica wrote the call first.",
            registry=r,
        )
        self.store_errors = Counter(
            "dialogue_store_errors",
            "Session store operations that failed (answered UNAVAILABLE), by operation.",
            ["operation"],
            registry=r,
        )
        self.auth_failures = Counter(
            "dialogue_auth_failures",
            "RPCs refused for a missing or invalid bearer token.",
            ["reason"],
            registry=r,
        )
        self.rpcs_started = Counter(
            "grpc_server_started",
            "RPCs started, by service and method.",
            ["grpc_service", "grpc_method"],
            registry=r,
        )
        self.rpcs = Counter(
            "grpc_server_handled",
            "RPCs completed, by service, method and status code.",
            ["grpc_service", "grpc_method", "grpc_code"],
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its end, by service and method.",
            ["grpc_service", "grpc_method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        # Labelled children by (metric, labels): `labels()` takes a lock and validates each time,
        # which costs more than the rest of the bookkeeping of a turn. Label sets are bounded.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, memoised."""
        key = (id(metric), labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def store_failed(self, operation: object) -> None:
        """Counts a failed store operation (a coroutine of a store method)."""
        # Coroutine names are the store's method names: a small fixed set.
        name = getattr(operation, "__name__", "") or "other"
        self.store_errors.labels(name).inc()


def start_metrics_http(listen: str, registry: CollectorRegistry) -> tuple[Callable[[], None], int]:
    """Serves `GET /metrics` on listen ("host:port") from a thread; (stop, bound port).

    Raises:
        OSError: the address cannot be bound.
        ValueError: listen is not host:port.
    """
    host, port = split_host_port(listen)
    server, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop, int(server.server_address[1])


def split_host_port(listen: str) -> tuple[str, int]:
    """("host", port) of "host:port" or "[v6]:port".

    Raises:
        ValueError: no port, or not a number in 0-65535.
    """
    host, separator, port = listen.rpartition(":")
    if not separator or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"{listen!r} is not HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


# -- one turn -----------------------------------------------------------------------------------


class Turn:
    """What one DecideNextAction did; counted and logged by `observe_turn` when it ends."""

    __slots__ = (
        "action",
        "call_id",
        "callee",
        "caller",
        "event",
        "flow",
        "node",
        "outcome",
        "platform",
        "request_id",
        "started",
        "version",
    )

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.call_id = self.request_id = self.event = self.caller = self.callee = ""
        self.platform = "unspecified"
        self.flow = self.version = self.node = self.action = ""
        self.outcome = "decided"

    def request(self, request: pb.DecideNextActionRequest) -> None:
        """Notes the (valid) request."""
        call = request.call
        self.call_id, self.request_id = call.call_id, request.request_id
        self.caller, self.callee = call.caller, call.callee
        self.event = request.WhichOneof("event") or ""
        name = pb.Platform.Name(call.platform) if call.platform in _PLATFORMS else "unspecified"
        self.platform = name.removeprefix("PLATFORM_").lower()

    def replayed(self) -> None:
        """The request was a retry, answered from the store."""
        self.outcome = "replayed"

    def decided(self, state: CallState, response: pb.DecideNextActionResponse) -> None:
        """The engine's decision, about to be stored."""
        self.flow, self.version, self.node = state.flow_id, state.flow_version, state.node
        self.action = response.WhichOneof("action") or ""


_PLATFORMS: Final = frozenset(pb.Platform.values())


@contextlib.contextmanager
def observe_turn(metrics: ServerMetrics) -> Iterator[Turn]:
    """Yields a Turn to fill in; on exit counts it, logs its line and annotates the span."""
    turn = Turn()
    try:
        yield turn
    except BaseException as exc:
        turn.outcome = _outcome_of(exc)
        raise
    finally:
        _finish(turn, metrics)


def _outcome_of(exc: BaseException) -> str:
    code = getattr(exc, "code", None)
    if isinstance(code, grpc.StatusCode):
        return str(code.name).lower()
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"


def _finish(turn: Turn, metrics: ServerMetrics) -> None:
    elapsed = time.perf_counter() - turn.started
    metrics.child(metrics.turn_seconds, turn.outcome).observe(elapsed)
    if turn.outcome == "replayed":
        metrics.replays.inc()
    elif turn.outcome == "decided":
        metrics.child(
            metrics.decisions,
            turn.flow or "none",
            turn.node or "none",
            turn.action or "none",
            turn.platform,
        ).inc()
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(
            {
                "dialogue.flow": turn.flow,
                "dialogue.flow_version": turn.version,
                "dialogue.node": turn.node,
                "dialogue.event": turn.event,
                "dialogue.action": turn.action,
                "dialogue.outcome": turn.outcome,
            }
        )
    if _turn_log.isEnabledFor(logging.INFO):
        fields = {
            "call_id": turn.call_id,
            "request_id": turn.request_id,
            "flow": turn.flow,
            "version": turn.version,
            "node": turn.node,
            "event": turn.event,
            "action": turn.action,
            "outcome": turn.outcome,
            "replay": turn.outcome == "replayed",
            "platform": turn.platform,
            "duration_ms": round(elapsed * 1000, 2),
        }
        if turn.caller:
            fields["caller"] = turn.caller
        if turn.callee:
            fields["callee"] = turn.callee
        _turn_log.info("turn", extra={"fields": fields})


# -- gRPC interceptor ---------------------------------------------------------------------------

Behavior = Callable[..., Any]


class ObservingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Counts and times every RPC of a registered method and, with a tracer, spans it.

    Unknown methods are not wrapped (gRPC answers them UNIMPLEMENTED), so a client cannot
    grow the label sets by inventing method names.
    """

    def __init__(self, metrics: ServerMetrics, tracer: trace.Tracer | None = None) -> None:
        self._metrics = metrics
        self._tracer = tracer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        service, _, method = str(details.method).lstrip("/").rpartition("/")
        metadata = details.invocation_metadata or ()
        for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
            behavior = getattr(handler, kind)
            if behavior is not None:
                wrapped = self._wrap(behavior, service, method, metadata)
                return handler._replace(**{kind: wrapped}) if wrapped else handler
        return handler

    def _wrap(
        self, behavior: Behavior, service: str, method: str, metadata: object
    ) -> Behavior | None:
        observe = self._observe
        if inspect.isasyncgenfunction(behavior):

            async def streamed(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                with observe(service, method, metadata, context):
                    async for item in behavior(request, context):
                        yield item

            return streamed
        if inspect.iscoroutinefunction(behavior):

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with observe(service, method, metadata, context):
                    return await behavior(request, context)

            return unary
        return None  # a synchronous handler: none is registered here

    @contextlib.contextmanager
    def _observe(
        self, service: str, method: str, metadata: object, context: grpc.aio.ServicerContext
    ) -> Iterator[None]:
        metrics = self._metrics
        metrics.child(metrics.rpcs_started, service, method).inc()
        started = time.perf_counter()
        span_scope: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self._tracer is not None:
            carrier = _carrier(metadata)
            span_scope = self._tracer.start_as_current_span(
                f"{service}/{method}",
                context=propagate.extract(carrier),
                kind=trace.SpanKind.SERVER,
                attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": method},
                # Status codes are answers, not crashes: set below from the code.
                record_exception=False,
                set_status_on_exception=False,
            )
        code = grpc.StatusCode.OK
        with span_scope as span:
            try:
                yield
                code = context.code() or grpc.StatusCode.OK
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                metrics.child(metrics.rpcs, service, method, code.name).inc()
                metrics.child(metrics.rpc_seconds, service, method).observe(
                    time.perf_counter() - started
                )
                if span is not None:
                    span.set_attribute("rpc.grpc.status_code", code.value[0])
                    if code in _SERVER_FAULTS:
                        span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))


def _code_of(exc: BaseException, context: grpc.aio.ServicerContext) -> grpc.StatusCode:
    # abort() raises after setting the code; cancellation is the client going away.
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _carrier(metadata: object) -> dict[str, str]:
    carrier: dict[str, str] = {}
    if isinstance(metadata, (tuple, list)):
        for item in metadata:
            key, value = item[0], item[1]
            if isinstance(value, str):
                carrier[str(key).lower()] = value
    return carrier


# -- tracing set-up -----------------------------------------------------------------------------


def tracer_provider_from_env(env: Mapping[str, str], service_name: str) -> TracerProvider | None:
    """An SDK TracerProvider when DIALOGUE_OTEL is on, else None (tracing off).

    The exporter is `OTEL_TRACES_EXPORTER`: `otlp` (default; `OTEL_EXPORTER_OTLP_PROTOCOL`
    `grpc` or `http/protobuf`, endpoint and headers from the standard OTEL_EXPORTER_OTLP_*
    variables) or `console` (spans as JSON on stderr, never stdout: stdout carries only the
    listening line). `OTEL_SERVICE_NAME` overrides the service name.

    Raises:
        ValueError: an exporter or protocol this does not know.
    """
    if env.get("DIALOGUE_OTEL", "").strip().lower() not in _TRUE:
        return None
    # Imported only when on: the SDK and exporters cost start-up time nobody else should pay.
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SimpleSpanProcessor,
        SpanExporter,
    )

    exporter_name = env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    provider = TracerProvider(resource=Resource.create(attributes))
    if exporter_name == "console":
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
        return provider
    if exporter_name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER must be otlp or console, not {exporter_name!r}")
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as GrpcExporter,
        )

        exporter: SpanExporter = GrpcExporter()
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter as HttpExporter,
        )

        exporter = HttpExporter()
    else:
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http/protobuf, not {protocol!r}"
        )
    # Batched, off the request path: an unreachable collector costs dropped spans, not turns.
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider
