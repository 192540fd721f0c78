"""Assembles the gRPC server: the dialogue service, health and reflection, with metrics,
tracing, TLS and tokens when configured."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from opentelemetry import trace

from server import reflection
from server.engine.catalog import Catalog
from server.observability import (
    ObservingInterceptor,
    ObservingRegistry,
    RpcObserver,
    ServerMetrics,
)
from server.security import ServerSecurity, TokenInterceptor
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
    metrics: ServerMetrics


async def create_server(
    address: str,
    catalog: Catalog,
    store: SessionStore,
    *,
    security: ServerSecurity | None = None,
    metrics: ServerMetrics | None = None,
    tracer: trace.Tracer | None = None,
) -> RunningServer:
    """Builds and starts a server on address ("host:port"; port 0 picks a free one).

    Args:
        address: Where to listen.
        catalog: The flows.
        store: The session store.
        security: TLS credentials and bearer tokens; None serves plaintext to anyone.
        metrics: Where to count; a fresh registry when None.
        tracer: Spans every RPC, continuing the caller's trace; None traces nothing.

    Raises:
        RuntimeError: the address cannot be bound.
    """
    security = security or ServerSecurity()
    metrics = metrics or ServerMetrics()
    observer = RpcObserver(metrics, tracer)
    interceptors: list[grpc.aio.ServerInterceptor] = []
    if security.tokens:
        # Observed per RPC, before the token check, so that its refusals are counted too.
        interceptors = [
            ObservingInterceptor(observer),
            TokenInterceptor(
                security.tokens, lambda reason: metrics.auth_failures.labels(reason).inc()
            ),
        ]
    server = grpc.aio.server(
        interceptors=interceptors,
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

    service = DialogueService(catalog, store, on_store_health, metrics=metrics)
    # Without an interceptor every method is observed once, when registered: an interceptor
    # costs a coroutine and a wrap per RPC (see server.observability.RpcObserver).
    registry: grpc.aio.Server | ObservingRegistry = (
        server if interceptors else ObservingRegistry(server, observer)
    )
    registry.add_generic_rpc_handlers((service.handler(),))
    registry.add_registered_method_handlers(SERVICE_NAME, service.method_handlers())
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registry)
    reflection.enable(registry, [SERVICE_NAME, health.SERVICE_NAME])
    try:
        if security.credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, security.credentials)
    except RuntimeError as exc:
        raise RuntimeError(f"cannot listen on {address}: {exc}") from exc
    await on_store_health(True)
    await server.start()
    return RunningServer(server, port, health_servicer, service, metrics)
