"""The event loop the server and the gateways run on (common/eventloop.py)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from common.eventloop import ASYNCIO, EVENT_LOOP, UVLOOP, run


async def _loop_kind() -> type[asyncio.AbstractEventLoop]:
    await asyncio.sleep(0)  # one trip around the loop, so it really ran
    return type(asyncio.get_running_loop())


def test_uvloop_is_the_default_and_runs_the_coroutine_on_uvloop() -> None:
    assert EVENT_LOOP.read({}) == UVLOOP
    assert issubclass(run(_loop_kind(), UVLOOP), uvloop.Loop)


def test_asyncio_runs_the_coroutine_on_pythons_own_loop() -> None:
    assert EVENT_LOOP.read({"DIALOGUE_EVENT_LOOP": "asyncio"}) == ASYNCIO
    assert not issubclass(run(_loop_kind(), ASYNCIO), uvloop.Loop)


def test_an_unknown_loop_is_refused_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="DIALOGUE_EVENT_LOOP='tokio' is not valid"):
        EVENT_LOOP.read({"DIALOGUE_EVENT_LOOP": "tokio"})
