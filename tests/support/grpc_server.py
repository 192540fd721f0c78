"""An in-process dialogue server on a real gRPC channel, for service-level tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from server.app import RunningServer, create_server
from server.config import DEMO_FLOWS
from server.engine.catalog import Catalog, load_catalog
from server.store import SessionStore, open_store

DECIDE = "/dialogue.v1.DialogueService/DecideNextAction"


@dataclass
class Served:
    """A running server, a channel to it, and the stub clients use."""

    running: RunningServer
    channel: grpc.aio.Channel
    stub: dialogue_pb2_grpc.DialogueServiceStub
    store: SessionStore

    async def decide(self, request: pb.DecideNextActionRequest) -> pb.DecideNextActionResponse:
        response: pb.DecideNextActionResponse = await self.stub.DecideNextAction(
            request, timeout=30
        )
        return response

    async def decide_raw(self, request: pb.DecideNextActionRequest) -> bytes:
        """The response exactly as it crossed the wire."""
        call = self.channel.unary_unary(DECIDE, request_serializer=None, response_deserializer=None)
        raw: bytes = await call(request.SerializeToString(), timeout=30)
        return raw


@asynccontextmanager
async def serve(
    store_url: str = "memory://", catalog: Catalog | None = None
) -> AsyncIterator[Served]:
    """Starts a server on a free loopback port and stops it (and its store) afterwards."""
    store = open_store(store_url)
    running = await create_server("127.0.0.1:0", catalog or load_catalog(DEMO_FLOWS), store)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield Served(running, channel, dialogue_pb2_grpc.DialogueServiceStub(channel), store)
    finally:
        await channel.close()
        await running.server.stop(None)
        await store.close()


def request(
    call_id: str, request_id: str, *, selector: str = "10086", **event: object
) -> pb.DecideNextActionRequest:
    """A DecideNextActionRequest for one event, e.g. `request("c1", "r1", call_started={})`."""
    message = pb.DecideNextActionRequest(request_id=request_id, **event)  # type: ignore[arg-type]
    message.call.call_id = call_id
    message.call.flow_selector = selector
    message.call.platform = pb.PLATFORM_OTHER
    return message


def bad_request_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The field names of the google.rpc.BadRequest detail of an error, in order."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [violation.field for violation in bad.field_violations]
    return []
