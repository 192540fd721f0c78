"""`python -m bench.bare`: the baseline of the gateway figure — the gateways' HTTP stack, bare.

FastAPI on uvicorn, configured as `dialogue-gateway` configures it, with one route that takes
any GET or POST, forwards a canned DecideNextActionRequest over one grpc.aio channel (bytes in,
bytes out, no mapping) and answers a canned vendor answer of the usual size (the Aliyun IVR
answers to the carrier script). What a gateway costs on top of this is its own work: reading
the vendor's fields, mapping, rendering, logging.

With `--api BASE` it is the baseline of the Telnyx chain, whose gateway answers a webhook by
calling the Call Control API: after the gRPC call it also sends the step's commands (the
Telnyx gateway's own, bench.vendors.telnyx_walk) to `BASE` with one plain httpx client, as
the gateway does through the Telnyx SDK, and answers `{"status": "ok"}`. So both sides of that
ratio make the same outbound HTTP requests, to the same fake API (bench/fake_telnyx.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
from collections.abc import Generator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import grpc
import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from bench.vendors import CALL_ID, TELNYX_API_KEY, script, telnyx_walk
from bench.workload import carrier_walk
from common.eventloop import EVENT_LOOP, EVENT_LOOPS
from common.eventloop import run as run_loop
from dialogue.v1 import dialogue_pb2 as pb
from gateways.aliyun_ivr import inbound, outbound

DECIDE = "/dialogue.v1.DialogueService/DecideNextAction"
_DEADLINE_S = 5.0


def canned_answers() -> list[dict[str, Any]]:
    """The Aliyun IVR gateway's answers to the carrier script, rendered by its own mapping."""
    targets = script("aliyun-ivr") or []
    answers = []
    for (_, target, _), (_, _, response) in zip(targets, carrier_walk(), strict=True):
        fields = dict(parse_qsl(urlsplit(target.replace(CALL_ID, "bench-0-0")).query))
        callback = inbound.parse_callback(fields)
        decision = pb.DecideNextActionResponse.FromString(response)
        answers.append(outbound.render_answer(callback, decision, outbound.AnswerSettings()))
    return answers


def create_bare_app(server: str, api: str = "") -> FastAPI:
    """The bare endpoint in front of `server`; with `api`, the Telnyx baseline (see above)."""
    requests = itertools.cycle([request for _, request, _ in carrier_walk()])
    answers = itertools.cycle(canned_answers())
    channel = grpc.aio.insecure_channel(server)
    decide = channel.unary_unary(DECIDE, request_serializer=None, response_deserializer=None)
    app = FastAPI(title="bench: bare HTTP → gRPC endpoint")
    if not api:

        @app.api_route("/{path:path}", methods=["GET", "POST"])
        async def forward(request: Request) -> JSONResponse:
            await decide(next(requests), timeout=_DEADLINE_S)
            return JSONResponse(next(answers))

        return app

    steps = itertools.cycle([commands for _, commands in telnyx_walk()])
    calls = itertools.count()
    client = httpx.AsyncClient(
        base_url=api, headers={"authorization": f"Bearer {TELNYX_API_KEY}"}, timeout=_DEADLINE_S
    )

    @app.api_route("/{path:path}", methods=["GET", "POST"])
    async def forward_and_command(request: Request) -> JSONResponse:
        await decide(next(requests), timeout=_DEADLINE_S)
        call = f"v3:bare-{next(calls)}"
        for name, body in next(steps):
            sent = await client.post(f"/calls/{call}/actions/{name}", json=body)
            sent.raise_for_status()
        return JSONResponse({"status": "ok"})

    return app


class _Server(uvicorn.Server):
    """uvicorn stopping on SIGTERM/SIGINT without re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.handle_exit, signum, None)
        yield


async def _serve(listen: str, server_address: str, api: str) -> None:
    host, _, port = listen.rpartition(":")
    server = _Server(
        uvicorn.Config(
            create_bare_app(server_address, api),
            host=host,
            port=int(port),
            log_level="info",
            access_log=False,
            log_config=None,
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if not task.done():
        bound = server.servers[0].sockets[0].getsockname()[1]
        print(f"bench-bare listening on {host}:{bound}", flush=True)
    await task


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--server", required=True, help="the echo servicer's host:port")
    parser.add_argument(
        "--api", default="", help="the Telnyx baseline: the Call Control API's base URL"
    )
    parser.add_argument(
        "--event-loop",
        choices=EVENT_LOOPS,
        default=EVENT_LOOP.default,
        help="the event loop (the gateways' default unless told: see bench/echo.py)",
    )
    args = parser.parse_args(argv)
    run_loop(_serve(args.listen, args.server, args.api), args.event_loop)


if __name__ == "__main__":
    main()
