"""`python -m bench.gateway_app VENDOR`: a gateway's own CPU per request, in-process.

The vendor's whole ASGI app (create_vendor_app: middlewares, routes, mapping, rendering, the
log line and metrics) takes the vendor's script of bench/vendors.py as ASGI calls, with no
socket, no HTTP parser and no gRPC: its decider answers the carrier script's canned decisions
(the echo servicer's). So what is measured is the gateway's own work per request, the part
figure 2's "gateway alone" rows mix with uvicorn's and gRPC's.

`--compare-direct` alternates rounds between the app as served and the same app without
`gateways.app.DirectRoutes` (every route through FastAPI's handler), and prints the medians:
the before/after of that lever in one run. Telnyx is left out: its routes need the Call
Control API (figure 2 measures it).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import Message

from bench.vendors import CALL_ID, script
from bench.workload import canned_responses
from dialogue.v1 import dialogue_pb2 as pb
from gateways import app as gateway_app
from gateways.decider import Decider, Outcome
from gateways.fallback import FallbackPolicy
from telemetry.logs import configure_logging

_VENDORS = ("aliyun-ivr", "aliyun-ccc", "huawei-odfs")


class _CannedDecider(Decider):
    """A decider answering the carrier script's decisions in turn, without a server."""

    def __init__(self) -> None:
        super().__init__("127.0.0.1:1", 5.0, FallbackPolicy())
        decisions = [pb.DecideNextActionResponse.FromString(r) for r in canned_responses()]
        self._decisions = itertools.cycle(decisions)

    async def decide(self, request: pb.DecideNextActionRequest) -> Outcome:
        return Outcome(next(self._decisions))


def build(vendor: str, *, direct: bool = True) -> FastAPI:
    """The vendor's app in front of a canned decider; without DirectRoutes when not direct."""
    if direct:
        return gateway_app.create_vendor_app(vendor, _CannedDecider(), os.environ)
    real = gateway_app.direct_routes
    gateway_app.direct_routes = lambda router: {}
    try:
        return gateway_app.create_vendor_app(vendor, _CannedDecider(), os.environ)
    finally:
        gateway_app.direct_routes = real


def _body(content: bytes) -> Any:
    """An ASGI receive callable delivering `content`, then a disconnect."""
    messages: list[Message] = [{"type": "http.request", "body": content, "more_body": False}]

    async def receive() -> Message:
        return messages.pop() if messages else {"type": "http.disconnect"}

    return receive


async def cpu_per_request_us(app: FastAPI, vendor: str, calls: int, prefix: str) -> float:
    """Runs `calls` scripted calls through the app; CPU microseconds per request."""
    statuses: set[int] = set()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.add(int(message["status"]))

    targets = script(vendor) or []
    started = time.process_time()
    for number in range(calls):
        call_id = f"{prefix}-{number}"
        for method, target, body in targets:
            parts = urlsplit(target.replace(CALL_ID, call_id))
            content = body.replace(CALL_ID, call_id).encode()
            headers = [(b"host", b"127.0.0.1")]
            if content:
                headers += [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                ]
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "scheme": "http",
                "path": parts.path,
                "raw_path": parts.path.encode(),
                "query_string": parts.query.encode(),
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 1),
                "server": ("127.0.0.1", 1),
                "state": {},
            }
            await app(scope, _body(content), send)
    elapsed = time.process_time() - started
    if statuses != {200}:
        raise RuntimeError(f"{vendor}: answers other than 200: {sorted(statuses)}")
    return elapsed / max(calls * len(targets), 1) * 1e6


async def _main(vendors: Sequence[str], calls: int, rounds: int, compare: bool) -> None:
    # The log line is part of a request's cost (formatted as served); where it goes is not.
    configure_logging("INFO", "text", open(os.devnull, "w"))  # noqa: SIM115 (process-long)
    for vendor in vendors:
        apps = {"direct": build(vendor)}
        if compare:
            apps = {"through FastAPI": build(vendor, direct=False), **apps}
        measured: dict[str, list[float]] = {name: [] for name in apps}
        for round_number in range(rounds):
            for name, app in apps.items():
                prefix = f"{name[0]}{round_number}"
                measured[name].append(await cpu_per_request_us(app, vendor, calls, prefix))
        medians = {name: statistics.median(values) for name, values in measured.items()}
        said = ", ".join(f"{name} {value:,.0f} µs" for name, value in medians.items())
        if compare:
            ratio = medians["direct"] / medians["through FastAPI"]
            said += f" ({ratio:.2f}×)"
        print(f"{vendor}: CPU per request, median of {rounds} rounds: {said}", flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_app", description=__doc__)
    parser.add_argument("vendors", nargs="*", help=f"some of {', '.join(_VENDORS)} (default: all)")
    parser.add_argument("--calls", type=int, default=200, help="scripted calls per round")
    parser.add_argument(
        "--rounds", type=int, default=8, help="rounds (alternating with --compare-direct)"
    )
    parser.add_argument("--compare-direct", action="store_true", help="also without DirectRoutes")
    args = parser.parse_args(argv)
    unknown = set(args.vendors) - set(_VENDORS)
    if unknown:
        parser.error(f"unknown vendors {sorted(unknown)}; expected some of {', '.join(_VENDORS)}")
    asyncio.run(_main(args.vendors or _VENDORS, args.calls, args.rounds, args.compare_direct))


if __name__ == "__main__":
    main()
