"""The gateway's client of DialogueService: one shared channel, a deadline on every call, and a
fallback decision instead of an error."""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import propagate, trace

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from gateways.fallback import FallbackPolicy, fallback_response
from gateways.observability import GatewayMetrics, note_decision
from gateways.security import ChannelSecurity
from telemetry.masking import mask_phone

_log = logging.getLogger("dialogue.gateway")
SERVICE_NAME = "dialogue.v1.DialogueService"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision and, when it is the fallback, why."""

    response: pb.DecideNextActionResponse
    fallback_reason: str = ""

    @property
    def is_fallback(self) -> bool:
        return bool(self.fallback_reason)


class Decider:
    """Asks the server for decisions; never raises for a failed decision.

    Args:
        target: The server (`host:port`, `dns:///name:port`).
        deadline_s: The deadline of every call.
        fallback: What to answer when the server does not.
        security: TLS, client certificate and token towards the server; plaintext when None.
        metrics: Where decisions and fallbacks are counted; a fresh registry when None.
        tracer: Spans each decision and sends its context to the server; None traces nothing.
    """

    def __init__(
        self,
        target: str,
        deadline_s: float,
        fallback: FallbackPolicy,
        *,
        security: ChannelSecurity | None = None,
        metrics: GatewayMetrics | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.target = target
        self.deadline_s = deadline_s
        self.fallback = fallback
        self.metrics = metrics or GatewayMetrics()
        self.tracer = tracer
        # Counted by reason (a status code name, or "error"), reported on /readyz and in logs.
        self.fallbacks: Counter[str] = Counter()
        security = security or ChannelSecurity()
        self._metadata = security.metadata()
        # Round robin over every address the target resolves to (`dns:///server:50051` with
        # several replicas): each call may go to any replica, which is what shared state is for.
        options = [
            ("grpc.lb_policy_name", "round_robin"),
            # gRPC's default reconnect backoff grows to 120 s: after a long server outage real
            # answers would take up to two minutes to come back. Two seconds at most instead.
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ]
        credentials = security.credentials()
        self._channel = (
            grpc.aio.insecure_channel(target, options=options)
            if credentials is None
            else grpc.aio.secure_channel(target, credentials, options=options)
        )
        self._stub = dialogue_pb2_grpc.DialogueServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def decide(self, request: pb.DecideNextActionRequest) -> Outcome:
        """The server's decision, or the fallback decision if it fails or misses the deadline."""
        started = time.perf_counter()
        with self._span(request) as (span, metadata):
            try:
                response: pb.DecideNextActionResponse = await self._stub.DecideNextAction(
                    request, timeout=self.deadline_s, metadata=metadata
                )
                self._observe(request, "", started)
                return Outcome(response)
            except grpc.aio.AioRpcError as error:
                reason = error.code().name
                detail = error.details() or ""
            except Exception as error:  # a bug must still not cost the call
                reason, detail = "error", repr(error)
            if span is not None:
                span.set_status(trace.Status(trace.StatusCode.ERROR, reason))
                span.set_attribute("dialogue.fallback", reason)
        self._observe(request, reason, started)
        self.fallbacks[reason] += 1
        _log.warning(
            "fallback for call %s (request %s): %s %s",
            request.call.call_id,
            request.request_id,
            reason,
            detail,
        )
        return Outcome(fallback_response(self.fallback, reason), reason)

    def _observe(self, request: pb.DecideNextActionRequest, reason: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        self.metrics.decision_seconds.labels("fallback" if reason else "decided").observe(elapsed)
        if reason:
            self.metrics.fallbacks.labels(reason).inc()
        note_decision(request.request_id, reason, elapsed)

    @contextlib.contextmanager
    def _span(
        self, request: pb.DecideNextActionRequest
    ) -> Iterator[tuple[trace.Span | None, tuple[tuple[str, str], ...]]]:
        """A client span for one decision (when tracing) and the metadata to send with it."""
        if self.tracer is None:
            yield None, self._metadata
            return
        with self.tracer.start_as_current_span(
            f"{SERVICE_NAME}/DecideNextAction",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "rpc.system": "grpc",
                "rpc.service": SERVICE_NAME,
                "rpc.method": "DecideNextAction",
                "dialogue.call_id": mask_phone(request.call.call_id),
                "dialogue.request_id": request.request_id,
            },
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)  # traceparent (and tracestate) of this span
            yield span, self._metadata + tuple(carrier.items())

    async def ready(self) -> bool:
        """True when the server's health service reports DialogueService serving."""
        try:
            check = await self._health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                timeout=self.deadline_s,
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(check.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self._channel.close()
