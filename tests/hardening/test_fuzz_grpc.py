"""Property-based fuzzing of DialogueService over a real gRPC channel.

Garbage bytes, valid requests with bytes flipped or cut, and messages built field by field over
the proto (unknown enum numbers, NaN confidences, oversized texts, every event and none): the
server answers OK or a status that names the client's mistake — INVALID_ARGUMENT,
FAILED_PRECONDITION, NOT_FOUND — never UNKNOWN or INTERNAL, and a refused request leaves the
store exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st

from dialogue.v1 import dialogue_pb2 as pb
from tests.hardening.stack import Stack, running_stack
from tests.hardening.strategies import bounded, messages, proto_text, weighted

GRPC_EXAMPLES = 300
DECIDE = "/dialogue.v1.DialogueService/DecideNextAction"
GET_CALL = "/dialogue.v1.DialogueService/GetCall"
# What a client's mistake may be answered with; OK for what the server accepts.
ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
}
# A few calls the examples share, so that later events meet calls in every state.
CALL_IDS = ["grpc-1", "grpc-2", "grpc-3", "grpc-4"]
SELECTORS = ["10086", "10087", "+18005550100", "survey-2026q4", "", "no-such-line"]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.server_address) as opened:
        yield opened


def call_raw(channel: grpc.Channel, method: str, payload: bytes) -> grpc.StatusCode:
    """Sends bytes as they are; the status the server answered."""
    send = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    try:
        send(payload, timeout=30)
    except grpc.RpcError as error:
        note(f"{method}: {error.code()} {error.details()}")
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def _request_ids() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["r1", "r2", "r3", " ", "", "x" * 129]), proto_text)


requests: st.SearchStrategy[Any] = messages(
    pb.DecideNextActionRequest.DESCRIPTOR,
    overrides={
        "dialogue.v1.DecideNextActionRequest.request_id": _request_ids(),
        "dialogue.v1.Call.call_id": st.one_of(st.sampled_from(CALL_IDS), proto_text),
        "dialogue.v1.Call.flow_selector": st.one_of(st.sampled_from(SELECTORS), proto_text),
    },
)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A request's bytes with some flipped, cut, or extended: what a broken peer sends."""
    payload = bytearray(draw(requests).SerializeToString())
    for _ in range(draw(st.integers(0, 4))):
        if payload and draw(st.booleans()):
            payload[draw(st.integers(0, len(payload) - 1))] = draw(st.integers(0, 255))
        else:
            payload += draw(st.binary(min_size=1, max_size=8))
    if payload and draw(st.booleans()):
        payload = payload[: draw(st.integers(0, len(payload)))]
    return bytes(payload)


payloads: st.SearchStrategy[bytes] = weighted(
    (3, requests.map(lambda message: message.SerializeToString())),
    (2, _mutated()),
    (1, st.binary(max_size=300)),
    # A string field of invalid UTF-8 (field 1, request_id, length-delimited).
    (1, st.binary(min_size=1, max_size=20).map(lambda raw: b"\x0a" + bytes([len(raw)]) + raw)),
)


def _get_call_bytes(call_id: str) -> bytes:
    return pb.GetCallRequest(call_id=call_id).SerializeToString()


def _exchange(stack: Stack, channel: grpc.Channel, method: str, payload: bytes) -> None:
    before = stack.digest()
    code = call_raw(channel, method, payload)
    event(f"{method.rsplit('/', 1)[1]} {code.name}")
    assert code in ACCEPTABLE, code
    if code != grpc.StatusCode.OK or method == GET_CALL:
        assert stack.digest() == before, "a refused request (or a read) changed the store"


@bounded(GRPC_EXAMPLES)
@given(payload=payloads)
def test_decide_next_action_answers_every_payload_cleanly(
    stack: Stack, channel: grpc.Channel, payload: bytes
) -> None:
    _exchange(stack, channel, DECIDE, payload)


@bounded(GRPC_EXAMPLES // 3)
@given(
    payload=weighted(
        (2, st.one_of(st.sampled_from(CALL_IDS), proto_text).map(_get_call_bytes)),
        (1, st.binary(max_size=100)),
    )
)
def test_get_call_answers_every_payload_cleanly(
    stack: Stack, channel: grpc.Channel, payload: bytes
) -> None:
    _exchange(stack, channel, GET_CALL, payload)
