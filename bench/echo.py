"""`python -m bench.echo`: a no-op DialogueService with the real server's setup and message sizes.

It is the baseline of the gRPC figures: the same grpc.aio server options, the same bytes-in /
bytes-out handlers registered the same way, health and reflection — and instead of a decision,
the next of the responses the real server gives to the carrier script (bench/workload.py), in
turn, so that the answers have the same sizes.

With `--sync` it is the same no-op on the synchronous gRPC server (a pool of SYNC_THREADS
threads), which costs about half the CPU per call of grpc.aio on this machine kind: figure 1
measures both and takes the faster as its baseline, so no ratio flatters the server by
comparing it with the slower stack. The grpc.aio echo runs on the server's event loop (uvloop
unless `--event-loop asyncio`, see common/eventloop.py): a lever of the loop then makes the
baseline cheaper too, and only what the server does beyond carrying the RPC shows in a ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection as grpc_reflection

from bench.workload import canned_responses
from common.eventloop import EVENT_LOOP, EVENT_LOOPS
from common.eventloop import run as run_loop
from server import app as server_app
from server import reflection
from server.service import SERVICE_NAME

# The real server's limits (server/app.py), so that both run the same gRPC setup.
_MAX_CONCURRENT_RPCS: int = getattr(server_app, "_MAX_CONCURRENT_RPCS", 1024)
_MAX_MESSAGE_BYTES: int = getattr(server_app, "_MAX_MESSAGE_BYTES", 1024 * 1024)
_SERVER_OPTIONS = [
    ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
]
# The sync echo's thread pool: the reference figure (2,317/s) was measured with 16.
SYNC_THREADS = 16


class EchoService:
    """Answers every DecideNextAction with the next canned response; GetCall with nothing."""

    def __init__(self, responses: Sequence[bytes]) -> None:
        self._responses: Iterator[bytes] = itertools.cycle(responses)

    def method_handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        async def decide(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return next(self._responses)

        async def get_call(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
            return b""

        return _bytes_handlers(decide=decide, get_call=get_call)

    def sync_method_handlers(self) -> dict[str, grpc.RpcMethodHandler]:
        """The same handlers for the synchronous server (called on its pool's threads)."""
        # next() on a shared cycle from many threads needs a lock; it is held for nanoseconds.
        lock = threading.Lock()

        def decide(raw: bytes, context: grpc.ServicerContext) -> bytes:
            with lock:
                return next(self._responses)

        def get_call(raw: bytes, context: grpc.ServicerContext) -> bytes:
            return b""

        return _bytes_handlers(decide=decide, get_call=get_call)


def _bytes_handlers(**methods: Callable[..., object]) -> dict[str, grpc.RpcMethodHandler]:
    """Bytes-in / bytes-out handlers under the service's method names (decide, get_call)."""
    names = {"decide": "DecideNextAction", "get_call": "GetCall"}
    return {
        names[key]: grpc.unary_unary_rpc_method_handler(
            method, request_deserializer=None, response_serializer=None
        )
        for key, method in methods.items()
    }


def create_sync_echo_server(address: str) -> tuple[grpc.Server, int]:
    """The echo on the synchronous gRPC server (SYNC_THREADS threads), started."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=SYNC_THREADS, thread_name_prefix="echo"),
        maximum_concurrent_rpcs=_MAX_CONCURRENT_RPCS,
        options=_SERVER_OPTIONS,
    )
    handlers = EchoService(canned_responses()).sync_method_handlers()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    grpc_reflection.enable_server_reflection(
        [SERVICE_NAME, health.SERVICE_NAME, grpc_reflection.SERVICE_NAME], server
    )
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    port: int = server.add_insecure_port(address)
    server.start()
    return server, port


async def create_echo_server(address: str) -> tuple[grpc.aio.Server, int]:
    """Builds and starts the echo server the way server/app.py builds the real one."""
    server = grpc.aio.server(
        maximum_concurrent_rpcs=_MAX_CONCURRENT_RPCS,
        options=_SERVER_OPTIONS,
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


def _serve_sync(address: str) -> None:
    server, port = create_sync_echo_server(address)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"bench-echo (sync) listening on {address.rsplit(':', 1)[0]}:{port}", flush=True)
    stop.wait()
    server.stop(1).wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.echo", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: any free)")
    parser.add_argument(
        "--sync",
        action="store_true",
        help=f"the synchronous gRPC server ({SYNC_THREADS} threads) instead of grpc.aio",
    )
    parser.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default=EVENT_LOOP.default,
        help="the grpc.aio echo's event loop (the server's default unless told)",
    )
    args = parser.parse_args(argv)
    if args.sync:
        _serve_sync(args.listen)
    else:
        run_loop(_serve(args.listen), args.event_loop)


if __name__ == "__main__":
    main()
