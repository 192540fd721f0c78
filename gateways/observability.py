"""What a gateway tells operators: Prometheus metrics, one log line per request, traces.

- Metrics live in a registry per app (tests run many gateways in one process) and are served at
  `GET /metrics`, on the gateway's port or on `--metrics-listen`. Labels take values from
  bounded sets only — routes (templates, not paths), known HTTP methods, status codes, status
  code names, fixed reasons — never call ids.
- Logs are text for people or one JSON object per line (`--log-format json`), with phone numbers
  masked by `telemetry.masking` in every message and field. Query strings are never logged: some
  vendors put their callback token there.
- Tracing is off unless `DIALOGUE_OTEL=1`; then each request gets a server span and each
  decision a client span whose W3C `traceparent` travels to the server in the gRPC metadata.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from opentelemetry import propagate, trace
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry.logs import log_line
from telemetry.prometheus import LabelledChildren

if TYPE_CHECKING:
    pass

__all__ = [
    "GatewayMetrics",
    "ObservedRequests",
    "note_decision",
]

# Decisions take milliseconds and are cut off at the deadline (500 ms by default).
LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Probes and scrapes come every few seconds: their lines would drown the calls'.
_QUIET_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})

_log = logging.getLogger("dialogue.gateway.http")


# -- metrics ------------------------------------------------------------------------------------


class CommandCounters(Protocol):
    """What the Telnyx Call Control client counts (gateways.telnyx.commands.CallControl)."""

    counters: Tally[str]
    failures: Tally[tuple[str, str]]


class GatewayMetrics:
    """A gateway's Prometheus metrics, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "dialogue_gateway_http_requests",
            "HTTP requests answered, by vendor, route template, method and status.",
            ["vendor", "route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "dialogue_gateway_http_request_duration_seconds",
            "Time to answer an HTTP request, by vendor and route template.",
            ["vendor", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.decision_seconds = Histogram(
            "dialogue_gateway_decision_duration_seconds",
            "Time to get a decision from the server, by outcome (decided or fallback).",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "dialogue_gateway_fallbacks",
            "Fallback decisions answered instead of the server's, by reason (a gRPC status code "
            "name, or error).",
            ["reason"],
            registry=r,
        )
        self.auth_failures = Counter(
            "dialogue_gateway_auth_failures",
            "Requests refused for their signature, token or credentials, by vendor and reason.",
            ["vendor", "reason"],
            registry=r,
        )
        # `self.child(metric, *labels)` is `metric.labels(*labels)`, looked up once.
        self.child = LabelledChildren()

    def watch_commands(self, control: CommandCounters) -> None:
        """Exposes a Telnyx Call Control client's counters (read at each scrape)."""
        self.registry.register(_CommandCollector(control))


class _CommandCollector(Collector):
    def __init__(self, control: CommandCounters) -> None:
        self._control = control

    def collect(self) -> Iterable[Metric]:
        commands = CounterMetricFamily(
            "dialogue_gateway_telnyx_commands",
            "Telnyx Call Control commands by outcome (accepted, deduplicated, retried, "
            "call_ended, refused, failed).",
            labels=["outcome"],
        )
        for outcome, count in sorted(self._control.counters.items()):
            commands.add_metric([outcome], count)
        failures = CounterMetricFamily(
            "dialogue_gateway_telnyx_command_failures",
            "Telnyx commands that did not go through, by outcome and Telnyx error code "
            "(http_STATUS without one, no_response when none came).",
            labels=["outcome", "code"],
        )
        for (outcome, code), count in sorted(self._control.failures.items()):
            failures.add_metric([outcome, code], count)
        return [commands, failures]


# -- per request --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Notes:
    """What the decider learnt during one HTTP request, for its log line."""

    request_id: str = ""
    fallback: str = ""
    decision_ms: float | None = None


_notes: ContextVar[_Notes | None] = ContextVar("dialogue_gateway_request_notes", default=None)


def note_decision(request_id: str, fallback_reason: str, seconds: float) -> None:
    """Records a decision on the current request's log line (a no-op outside a request)."""
    notes = _notes.get()
    if notes is not None:
        notes.request_id = request_id
        notes.fallback = fallback_reason
        notes.decision_ms = round(seconds * 1000, 2)


class ObservedRequests:
    """ASGI middleware: counts, times, logs and (with a tracer) spans every HTTP request."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        vendor: str,
        metrics: GatewayMetrics,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.app = app
        self.vendor = vendor
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        notes = _Notes()
        # The notes object is shared with tasks the request starts (they copy the context).
        token = _notes.set(notes)
        try:
            with self._span(scope) as span:
                try:
                    await self.app(scope, receive, sending)
                finally:
                    route = _route_of(scope)
                    if span is not None:
                        span.update_name(f"{scope['method']} {route}")
                        span.set_attribute("http.route", route)
                        span.set_attribute("http.response.status_code", status)
                        if status >= 500:
                            span.set_status(trace.Status(trace.StatusCode.ERROR))
                    # Inside the span, so the log line carries its trace id.
                    self._record(scope, route, status, time.perf_counter() - started, notes)
        finally:
            _notes.reset(token)

    @contextlib.contextmanager
    def _span(self, scope: Scope) -> Iterator[trace.Span | None]:
        if self.tracer is None:
            yield None
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate")
        }
        with self.tracer.start_as_current_span(
            str(scope["method"]),
            context=propagate.extract(carrier),
            kind=trace.SpanKind.SERVER,
            attributes={
                "http.request.method": str(scope["method"]),
                "dialogue.vendor": self.vendor,
            },
        ) as span:
            yield span

    def _record(self, scope: Scope, route: str, status: int, elapsed: float, notes: _Notes) -> None:
        method = str(scope["method"])
        method_label = method if method in _METHODS else "other"
        metrics = self.metrics
        metrics.child(metrics.requests, self.vendor, route, method_label, str(status)).inc()
        metrics.child(metrics.request_seconds, self.vendor, route).observe(elapsed)
        path = str(scope.get("path", ""))
        level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
        if not _log.isEnabledFor(level):
            return
        state = scope.get("state") or {}
        fields: dict[str, Any] = {
            "vendor": self.vendor,
            "method": method_label,
            "route": route,
            "path": path,  # never the query string: it may carry a callback token
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "call_id": str(state.get("call_id", "") if isinstance(state, Mapping) else ""),
        }
        if notes.decision_ms is not None:
            fields.update(
                request_id=notes.request_id,
                decision_ms=notes.decision_ms,
                fallback=notes.fallback,
            )
        log_line(_log, level, "%s %s %d", (method_label, path, status), fields)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
