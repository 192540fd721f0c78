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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import Any, Final

import grpc
from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter, Histogram

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.state import CallState
from telemetry.logs import log_line
from telemetry.prometheus import LabelledChildren

__all__ = [
    "ObservingInterceptor",
    "ObservingRegistry",
    "RpcObserver",
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

        # `self.child(metric, *labels)` is `metric.labels(*labels)`, looked up once.
        self.child = LabelledChildren()

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
        log_line(_turn_log, logging.INFO, "turn", (), fields)


# -- every RPC -----------------------------------------------------------------------------------

Behavior = Callable[..., Any]
_KINDS: Final = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")


class RpcObserver:
    """Counts and times every RPC of a registered method and, with a tracer, spans it.

    The observation wraps a method's handler, and is attached in one of two ways: once per
    method when it is registered (`ObservingRegistry`, the default), or once per RPC by the
    `ObservingInterceptor` when an interceptor must be seen too (the token check: its refusals
    are counted). The interceptor costs a coroutine, a lookup and a wrap per RPC: about a tenth
    of the server's CPU per decision (bench/levers.md), so it is used only where needed.
    Unknown methods are never wrapped (gRPC answers them UNIMPLEMENTED), so a client cannot grow
    the label sets by inventing method names.
    """

    def __init__(self, metrics: ServerMetrics, tracer: trace.Tracer | None = None) -> None:
        self._metrics = metrics
        self._tracer = tracer

    def handler(self, path: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """The handler of method `path` ("/package.Service/Method"), observed."""
        service, _, method = path.lstrip("/").rpartition("/")
        for kind in _KINDS:
            behavior = getattr(handler, kind)
            if behavior is not None:
                wrapped = self._wrap(behavior, service, method)
                return handler._replace(**{kind: wrapped}) if wrapped else handler
        return handler

    def _wrap(self, behavior: Behavior, service: str, method: str) -> Behavior | None:
        metrics = self._metrics
        started_counter = metrics.child(metrics.rpcs_started, service, method)
        seconds = metrics.child(metrics.rpc_seconds, service, method)
        observe = self._observe
        if inspect.isasyncgenfunction(behavior):

            async def streamed(
                request: Any, context: grpc.aio.ServicerContext
            ) -> AsyncIterator[Any]:
                with observe(service, method, context):
                    async for item in behavior(request, context):
                        yield item

            return streamed
        if not inspect.iscoroutinefunction(behavior):
            return None  # a synchronous handler: none is registered here
        if self._tracer is not None:

            async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
                with observe(service, method, context):
                    return await behavior(request, context)

            return traced

        # The hot path (every decision): the bookkeeping inline, no context manager.
        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started_counter.inc()
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                reply = await behavior(request, context)
                code = context.code() or grpc.StatusCode.OK
                return reply
            except BaseException as exc:
                code = _code_of(exc, context)
                raise
            finally:
                metrics.child(metrics.rpcs, service, method, code.name).inc()
                seconds.observe(time.perf_counter() - started)

        return unary

    @contextlib.contextmanager
    def _observe(
        self, service: str, method: str, context: grpc.aio.ServicerContext
    ) -> Iterator[None]:
        metrics = self._metrics
        metrics.child(metrics.rpcs_started, service, method).inc()
        started = time.perf_counter()
        span_scope: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self._tracer is not None:
            carrier = _carrier(context.invocation_metadata())
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


class ObservingRegistry:
    """Registers handlers on a server with the observation attached once, at registration.

    It stands in for the server where handlers are added (`add_generic_rpc_handlers`,
    `add_registered_method_handlers`, as the health and reflection helpers call them).
    """

    def __init__(self, server: grpc.aio.Server, observer: RpcObserver) -> None:
        self._server = server
        self._observer = observer

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """See `grpc.aio.Server.add_generic_rpc_handlers`."""
        self._server.add_generic_rpc_handlers(
            tuple(_ObservedGenericHandler(handler, self._observer) for handler in handlers)
        )

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        """See `grpc.aio.Server.add_registered_method_handlers`."""
        self._server.add_registered_method_handlers(
            service,
            {
                name: self._observer.handler(f"/{service}/{name}", handler)
                for name, handler in handlers.items()
            },
        )


class _ObservedGenericHandler(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generic handler whose answers are observed; each method wrapped once, then reused."""

    def __init__(self, inner: grpc.GenericRpcHandler, observer: RpcObserver) -> None:
        self._inner = inner
        self._observer = observer
        # Method → (the inner handler, observed): only methods the inner handler knows.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(details)
        if handler is None:
            return None
        path = str(details.method)
        found = self._wrapped.get(path)
        if found is None or found[0] is not handler:
            found = self._wrapped[path] = (handler, self._observer.handler(path, handler))
        return found[1]


class ObservingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Attaches `RpcObserver` per RPC, to whatever handler the interceptors after it return."""

    def __init__(self, observer: RpcObserver) -> None:
        self._observer = observer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(details)
        if handler is None:
            return None
        return self._observer.handler(str(details.method), handler)


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
