"""Whole calls over HTTP, against a real grpc.aio server answering scripted decisions: the two
invariants of docs/gateways/aliyun-ivr.md hold for every contract action, callin and later.

1. Every answer is one the document allows (action_code always, values in range).
2. The platform is never idle: answers that wait carry a mute_time, and once a hang-up or a
   transfer was decided, every later callback (speech over the goodbye, a timebreak, silence,
   keys, a transfer status) gets it again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from tests.gateways.aliyun_ivr.test_end_to_end import CALLBACK, Caller
from tests.gateways.test_every_action import ACTIONS, _sample
from tests.support.gateway import serve_gateway

_ENV = {"ALIYUN_TRANSFER_NUMBERS": "10086001=+8610086001"}
_CALLIN_VERBS = {"answer", "hangup"}
_TURN_VERBS = {
    "play", "break", "continue", "hangup", "transfer", "donothing", "dtmf", "parallel_transfer", "parallel_bridge",
}  # fmt: skip
_WAITING = {"answer", "play", "donothing", "continue", "break"}
_DECIDED = {"hangup", "transfer", "parallel_transfer"}
# Every callback kind after the first, in an order that talks over what plays first.
_LATER = [
    ("timebreak", {"asr_begin_time": "1", "current_media_code": "x.wav"}),
    ("normal", {"words": "喂喂"}),
    ("mute", {}),
    ("dtmf", {"dtmf_digits": "1"}),
    ("parallel_transfer", {"status": "success"}),
]


class Scripted(dialogue_pb2_grpc.DialogueServiceServicer):
    """Answers every event of call `call-<action>` with the sample decision for that action."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.selectors: list[str] = []

    async def DecideNextAction(  # noqa: N802 - the generated servicer's name
        self, request: pb.DecideNextActionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DecideNextActionResponse:
        self.events.append(str(request.WhichOneof("event")))
        self.selectors.append(request.call.flow_selector)
        assert not request.call.capabilities, "Aliyun announces no capability"
        return _sample(request.call.call_id.removeprefix("call-"))

    async def GetCall(  # noqa: N802 - the generated servicer's name
        self, request: pb.GetCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCallResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted")
        raise AssertionError("unreachable")


@asynccontextmanager
async def scripted_server() -> AsyncIterator[tuple[str, Scripted]]:
    server = grpc.aio.server()
    servicer = Scripted()
    dialogue_pb2_grpc.add_DialogueServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        await server.stop(None)


def _check(data: dict[str, Any], callin: bool) -> None:
    assert data["action"] in (_CALLIN_VERBS if callin else _TURN_VERBS), data
    assert isinstance(data["action_code"], str), data
    if data["action"] in _WAITING:
        assert 1000 <= data["mute_time"] <= 20000, data
    if data["action"] == "transfer":
        assert data["number"] == "010086001", data  # +86 in national form
    json.loads(data.get("action_code_param") or "{}")


@pytest.mark.parametrize("first", ["callin", "normal"])
@pytest.mark.parametrize("action", ACTIONS)
async def test_every_action_keeps_both_invariants_over_a_whole_call(
    action: str, first: str
) -> None:
    async with (
        scripted_server() as (address, _),
        serve_gateway("aliyun-ivr", address, _ENV) as client,
    ):
        caller = Caller(client, f"call-{action}")
        opening = {"caller": "13800138000", "callee": "10086"} if first == "callin" else {}
        data = await caller.send(first, opening)
        _check(data, callin=first == "callin")
        decided = data["action"] if data["action"] in _DECIDED else ""
        if first == "callin" and data.get("dynamic_id", "").rpartition(".")[2][:1] in "tep":
            decided = "transfer"  # callin cannot transfer: the next callback must
        for kind, fields in _LATER:
            data = await caller.send(kind, {**fields, "dynamic_id": data.get("dynamic_id", "")})
            _check(data, callin=False)
            if decided == "hangup":
                assert data["action"] == "hangup", (kind, data)
            elif decided:
                # The transfer stands (a parallel one is bridged on its success status).
                assert data["action"] in {"transfer", "parallel_transfer", "parallel_bridge"}, (
                    kind,
                    data,
                )
            elif data["action"] in _DECIDED:
                decided = data["action"]


async def test_an_outbound_call_chooses_its_flow_by_the_callback_url() -> None:
    async with (
        scripted_server() as (address, servicer),
        serve_gateway("aliyun-ivr", address, _ENV) as client,
    ):
        fields = Caller(client, "call-play").fields("normal", {"words": "喂"})
        reply = await client.get(CALLBACK, params={**fields, "flow": "survey"})
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/json; charset=utf-8"
        assert servicer.events == ["speech_recognized"]
        assert servicer.selectors == ["survey"]
