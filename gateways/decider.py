"""The gateway's client of DialogueService: one shared channel, a deadline on every call, and a
fallback decision instead of an error."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from gateways.fallback import FallbackPolicy, fallback_response

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
    """Asks the server for decisions; never raises for a failed decision."""

    def __init__(self, target: str, deadline_s: float, fallback: FallbackPolicy) -> None:
        self.target = target
        self.deadline_s = deadline_s
        self.fallback = fallback
        # Counted by reason (a status code name, or "error"), reported on /readyz and in logs.
        self.fallbacks: Counter[str] = Counter()
        # Round robin over every address the target resolves to (`dns:///server:50051` with
        # several replicas): each call may go to any replica, which is what shared state is for.
        self._channel = grpc.aio.insecure_channel(
            target, options=[("grpc.lb_policy_name", "round_robin")]
        )
        self._stub = dialogue_pb2_grpc.DialogueServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def decide(self, request: pb.DecideNextActionRequest) -> Outcome:
        """The server's decision, or the fallback decision if it fails or misses the deadline."""
        try:
            response: pb.DecideNextActionResponse = await self._stub.DecideNextAction(
                request, timeout=self.deadline_s
            )
            return Outcome(response)
        except grpc.aio.AioRpcError as error:
            reason = error.code().name
            detail = error.details() or ""
        except Exception as error:  # a bug must still not cost the call
            reason, detail = "error", repr(error)
        self.fallbacks[reason] += 1
        _log.warning(
            "fallback for call %s (request %s): %s %s",
            request.call.call_id,
            request.request_id,
            reason,
            detail,
        )
        return Outcome(fallback_response(self.fallback, reason), reason)

    async def call_exists(self, call_id: str) -> bool | None:
        """Whether the server knows the call; None when it cannot tell in time."""
        try:
            await self._stub.GetCall(pb.GetCallRequest(call_id=call_id), timeout=self.deadline_s)
            return True
        except grpc.aio.AioRpcError as error:
            return False if error.code() == grpc.StatusCode.NOT_FOUND else None

    async def ready(self) -> bool:
        """True when the server's health service reports DialogueService serving."""
        try:
            check = await self._health.Check(
                health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=self.deadline_s
            )
        except grpc.aio.AioRpcError:
            return False
        return bool(check.status == health_pb2.HealthCheckResponse.SERVING)

    async def close(self) -> None:
        await self._channel.close()
