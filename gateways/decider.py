"""The gateway's client of DialogueService: one shared channel, a deadline on every call, and a
fallback decision instead of an error."""

from __future__ import annotations

import contextlib
import json
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

# Codes after which another attempt (on the next backend of the round robin) is safe:
# DecideNextAction is idempotent by request_id, UNAVAILABLE means the replica died, was
# draining or lost its store, ABORTED that a concurrent writer won (the server says "retry"),
# CANCELLED that a replica going down cut the call off (seen in the replica-kill drill). The
# gateway's own cancellations are never retried: gRPC retries only what the server answered.
RETRYABLE_CODES = ("UNAVAILABLE", "ABORTED", "CANCELLED")
# gRPC caps maxAttempts at 5 whatever the config says; 5 covers 4 dead replicas in a row.
MAX_ATTEMPTS = 5
# Bounds of the channel's reconnect backoff (gRPC's own default grows to 120 s).
_RECONNECT_INITIAL_MS = 100
_RECONNECT_CEILING_MS = 2000


def service_config(deadline_s: float) -> dict[str, object]:
    """The channel's service config: round robin over every address, and retries of the
    RETRYABLE_CODES whose backoff fits several attempts inside one deadline.

    Retries, not hedging: a hedge would send every turn to two replicas, doubling the load on
    the store (and making them race on one call's compare-and-set) to save a few milliseconds
    that only a slow replica costs; a retry costs nothing until a replica fails.
    """
    # Four backoffs (between five attempts) fit in one deadline; whole milliseconds, rounded down.
    max_backoff_ms = max(8, min(1000, int(deadline_s * 1000) // 4))
    return {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": SERVICE_NAME}],
                "waitForReady": True,
                "retryPolicy": {
                    "maxAttempts": MAX_ATTEMPTS,
                    "initialBackoff": f"{max_backoff_ms // 8 / 1000}s",
                    "maxBackoff": f"{max_backoff_ms / 1000}s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": list(RETRYABLE_CODES),
                },
            }
        ],
        # A server in a retry storm gets retries cut off: each failure spends a token, each
        # success earns a tenth, and retries stop below half of the 100.
        "retryThrottling": {"maxTokens": 100, "tokenRatio": 0.1},
    }


def channel_options(deadline_s: float) -> list[tuple[str, str | int]]:
    """gRPC channel arguments for a gateway whose calls have deadline `deadline_s`.

    The reconnect backoff is bounded by half the deadline (at most two seconds): a server
    that comes back is tried again within any one call's deadline, and a call waiting for it
    (wait_for_ready) gets it rather than a timeout.
    """
    deadline_ms = int(deadline_s * 1000)
    ceiling_ms = max(_RECONNECT_INITIAL_MS, min(_RECONNECT_CEILING_MS, deadline_ms // 2))
    return [
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.service_config", json.dumps(service_config(deadline_s))),
        ("grpc.enable_retries", 1),
        ("grpc.initial_reconnect_backoff_ms", min(_RECONNECT_INITIAL_MS, ceiling_ms)),
        ("grpc.max_reconnect_backoff_ms", ceiling_ms),
    ]


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
        credentials = security.credentials()
        self._channel = (
            grpc.aio.insecure_channel(target, options=channel_options(deadline_s))
            if credentials is None
            else grpc.aio.secure_channel(target, credentials, options=channel_options(deadline_s))
        )
        self._stub = dialogue_pb2_grpc.DialogueServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def decide(self, request: pb.DecideNextActionRequest) -> Outcome:
        """The server's decision, or the fallback decision if it fails or misses the deadline."""
        started = time.perf_counter()
        with self._span(request) as (span, metadata):
            try:
                # wait_for_ready: while no backend is reachable the call waits (within its
                # deadline) for one to come back instead of failing at once.
                response: pb.DecideNextActionResponse = await self._stub.DecideNextAction(
                    request, timeout=self.deadline_s, metadata=metadata, wait_for_ready=True
                )
                self._observe(request, "", started)
                return Outcome(response)
            except grpc.aio.AioRpcError as error:
                reason = self._reason(error.code())
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

    def _reason(self, code: grpc.StatusCode) -> str:
        """The fallback's reason: the status code, except that a deadline spent waiting for an
        unreachable server is UNAVAILABLE (wait_for_ready turns "no server" into a timeout,
        and an operator needs to tell "down" from "slow")."""
        unreachable = self._channel.get_state() in (
            grpc.ChannelConnectivity.TRANSIENT_FAILURE,
            grpc.ChannelConnectivity.CONNECTING,
        )
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and unreachable:
            code = grpc.StatusCode.UNAVAILABLE
        name: str = code.name
        return name

    def _observe(self, request: pb.DecideNextActionRequest, reason: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        metrics = self.metrics
        metrics.child(metrics.decision_seconds, "fallback" if reason else "decided").observe(
            elapsed
        )
        if reason:
            metrics.child(metrics.fallbacks, reason).inc()
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
