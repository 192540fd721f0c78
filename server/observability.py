"""What the server tells operators: Prometheus metrics, one log line per turn, traces.

- Metrics live in a registry of their own per server (tests run many servers in one process),
  served on a separate port by `telemetry.metrics_http` when `--metrics-listen` is set. Labels take
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
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, Final

import grpc
from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter, Histogram

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.state import CallState

if TYPE_CHECKING:
    pass

__all__ = [
    "ObservingInterceptor",
    "ServerMetrics",
    "Turn",
    "observe_turn",
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
