"""`python -m bench.echo`: a no-op DialogueService with the real server's setup and message sizes.

It is the baseline of the gRPC figures: the same grpc.aio server options, the same bytes-in /
bytes-out handlers registered the same way, health and reflection — and instead of a decision,
the next of the responses the real server gives to the carrier script (bench/workload.py), in
turn, so that the answers have the same sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
from collections.abc import Iterator, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from bench.workload import canned_responses
from server import app as server_app
from server import reflection
from server.service import SERVICE_NAME

# The real server's limits (server/app.py), so that both run the same gRPC setup.
_MAX_CONCURRENT_RPCS: int = getattr(server_app, "_MAX_CONCURRENT_RPCS", 1024)
_MAX_MESSAGE_BYTES: int = getattr(server_app, "_MAX_MESSAGE_BYTES", 1024 * 1024)


class EchoService:
    """Answers every DecideNextAction with the next canned response; GetCall with nothing."""

    def __init__(self, responses: Sequence[bytes]) -> None:
        self._responses: Iterator[bytes] = itertools.cycle(responses)

    def method_handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        async def decide(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return next(self._responses)

        async def get_call(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return b""

        return {
            "DecideNextAction": grpc.unary_unary_rpc_method_handler(
                decide, request_deserializer=None, response_serializer=None
            ),
            "GetCall": grpc.unary_unary_rpc_method_handler(
                get_call, request_deserializer=None, response_serializer=None
            ),
        }


async def create_echo_server(address: str) -> tuple[grpc.aio.Server, int]:
    """Builds and starts the echo server the way server/app.py builds the real one."""
    server = grpc.aio.server(
        maximum_concurrent_rpcs=_MAX_CONCURRENT_RPCS,
        options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
        ],
    )
    handlers = EchoService(canned_responses()).method_handlers()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable(server, [SERVICE_NAME, health.SERVICE_NAME])
    port: int = server.add_insecure_port(address)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await server.start()
    return server, port


async def _serve(address: str) -> None:
    server, port = await create_echo_server(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"bench-echo listening on {address.rsplit(':', 1)[0]}:{port}", flush=True)
    await stop.wait()
    await server.stop(1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: any free)")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.listen))


if __name__ == "__main__":
    main()
