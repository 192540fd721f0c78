"""Assembles the gRPC server: the dialogue service, health and reflection."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from server import reflection
from server.engine.catalog import Catalog
from server.service import SERVICE_NAME, DialogueService
from server.store import SessionStore

# Bounded so that a flood of slow calls queues in the kernel rather than in our memory.
_MAX_CONCURRENT_RPCS = 1024
_MAX_MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A started server, the port it bound and its health servicer."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service: DialogueService


async def create_server(address: str, catalog: Catalog, store: SessionStore) -> RunningServer:
    """Builds and starts a server on address ("host:port"; port 0 picks a free one).

    Raises:
        RuntimeError: the address cannot be bound.
    """
    server = grpc.aio.server(
        maximum_concurrent_rpcs=_MAX_CONCURRENT_RPCS,
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            # Lets `--workers N` processes share the port (gRPC's default on Linux; said aloud).
            ("grpc.so_reuseport", 1),
        ],
    )
    health_servicer = health.aio.HealthServicer()

    async def on_store_health(healthy: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if healthy
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, status)

    service = DialogueService(catalog, store, on_store_health)
    server.add_generic_rpc_handlers((service.handler(),))
    server.add_registered_method_handlers(SERVICE_NAME, service.method_handlers())
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable(server, [SERVICE_NAME, health.SERVICE_NAME])
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen on {address}: {exc}") from exc
    await on_store_health(True)
    await server.start()
    return RunningServer(server, port, health_servicer, service)
