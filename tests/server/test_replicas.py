"""Two server processes sharing one real Redis serve any call at any turn, exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from tests.support.redis_server import start_redis
from tests.support.scripted_calls import SCRIPT, scripted_request, uninterrupted_end
from tests.support.server_process import start_server

CALLS = 12
BURST = 8
_BOUND_S = 60

Stub = dialogue_pb2_grpc.DialogueServiceStub


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Stub, Stub]]:
    with start_redis(tmp_path) as redis:
        args = ("--listen", "127.0.0.1:0", "--store", redis.url)
        with (
            start_server(*args) as first,
            start_server(*args) as second,
            grpc.insecure_channel(first.address) as a,
            grpc.insecure_channel(second.address) as b,
        ):
            yield Stub(a), Stub(b)


def test_turns_alternating_between_replicas_end_where_one_server_would(
    replicas: tuple[Stub, Stub],
) -> None:
    end = uninterrupted_end()
    for call in range(CALLS):
        for step in range(len(SCRIPT)):
            replicas[(call + step) % 2].DecideNextAction(
                scripted_request(call, step), timeout=_BOUND_S
            )
    for call in range(CALLS):
        history = replicas[call % 2].GetCall(
            pb.GetCallRequest(call_id=f"crash-{call}"), timeout=_BOUND_S
        )
        assert [t.request.request_id for t in history.turns] == [
            f"c{call}-r{s}" for s in range(len(SCRIPT))
        ]
        assert (history.call.node_id, history.call.dialogue_over) == end


def test_a_burst_of_duplicates_on_both_replicas_is_applied_once_with_one_answer(
    replicas: tuple[Stub, Stub],
) -> None:
    replicas[0].DecideNextAction(scripted_request(0, 0), timeout=_BOUND_S)
    press = scripted_request(0, 1)
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(
            pool.map(
                lambda n: replicas[n % 2].DecideNextAction(press, timeout=_BOUND_S), range(BURST)
            )
        )
    assert all(answer == answers[0] for answer in answers)
    history = replicas[1].GetCall(pb.GetCallRequest(call_id="crash-0"), timeout=_BOUND_S)
    assert [t.request.request_id for t in history.turns] == ["c0-r0", "c0-r1"]


def test_a_burst_of_distinct_events_on_both_replicas_is_serialised(
    replicas: tuple[Stub, Stub],
) -> None:
    start = scripted_request(1, 0)
    replicas[0].DecideNextAction(start, timeout=_BOUND_S)
    silences = []
    for n in range(BURST):
        message = pb.DecideNextActionRequest(request_id=f"silence-{n}", no_input=pb.NoInput())
        message.call.call_id = start.call.call_id
        silences.append(message)
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(
            pool.map(
                lambda n: replicas[n % 2].DecideNextAction(silences[n], timeout=_BOUND_S),
                range(BURST),
            )
        )
    turns = sorted(answer.diagnostics.turn for answer in answers)
    assert turns == list(range(2, BURST + 2))
    history = replicas[0].GetCall(pb.GetCallRequest(call_id=start.call.call_id), timeout=_BOUND_S)
    assert [t.number for t in history.turns] == list(range(1, BURST + 2))
    assert sorted(t.request.request_id for t in history.turns[1:]) == sorted(
        m.request_id for m in silences
    )
