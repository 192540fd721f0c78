"""The event loop the server and the gateways run on: uvloop unless told otherwise.

uvloop (libuv under asyncio's interface) runs the callbacks grpc.aio and uvicorn schedule for
every RPC and request with less work than asyncio's own loop: `python -m bench.ab` measured the
server at 0.91× the CPU per decision on it (bench/levers.md). asyncio's own loop stays one
setting away, for debugging with asyncio's debug mode or if uvloop misbehaves on a platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Final, TypeVar

import uvloop

from common.settings import Setting, choice

T = TypeVar("T")

UVLOOP: Final = "uvloop"
ASYNCIO: Final = "asyncio"
EVENT_LOOPS: Final = (UVLOOP, ASYNCIO)
EVENT_LOOP = Setting(
    "DIALOGUE_EVENT_LOOP",
    choice(*EVENT_LOOPS),
    UVLOOP,
    "the event loop: uvloop (less CPU per request) or asyncio's own (for debugging)",
    flag="--event-loop",
)


def run(main: Coroutine[Any, Any, T], loop: str) -> T:
    """Runs main to completion on a new event loop of the kind named (EVENT_LOOP's values)."""
    if loop == UVLOOP:
        return uvloop.run(main)
    return asyncio.run(main)
