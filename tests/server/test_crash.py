"""Crash safety: SIGKILL in the middle of a load of calls loses no acknowledged turn.

Each call follows a script of events. Clients send them in order and remember which were
acknowledged. The server is killed without warning mid-load, restarted on the same store, and
every call is resumed from its first unacknowledged event (re-sending the one that was in flight,
which the server either replays or applies). In the end every call's history must be exactly its
script, once each, in order, and every call must end where an uninterrupted run ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from tests.support.redis_server import start_redis
from tests.support.scripted_calls import SCRIPT, scripted_request, uninterrupted_end
from tests.support.server_process import start_server

CALLS = 24
WORKERS = 6
KILL_AFTER_ACKS = 50
_BOUND_S = 60


def _drive(
    address: str,
    progress: list[int],
    kill_at: int | None = None,
    kill: Callable[[], None] = lambda: None,
) -> None:
    """Sends each call's remaining events in order; progress[call] = events acknowledged.

    With kill_at, `kill` runs as the kill_at-th acknowledgement arrives, while the other workers
    still have requests in flight.
    """
    lock = threading.Lock()
    acked = [sum(progress)]
    calls = iter(range(CALLS))

    def worker() -> None:
        with grpc.insecure_channel(address) as channel:
            stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
            for call in calls:
                while progress[call] < len(SCRIPT):
                    try:
                        stub.DecideNextAction(
                            scripted_request(call, progress[call]), timeout=_BOUND_S
                        )
                    except grpc.RpcError:
                        return  # the server died under us: this event stays unacknowledged
                    with lock:
                        progress[call] += 1
                        acked[0] += 1
                        if acked[0] == kill_at:
                            kill()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(_BOUND_S * 4)


@contextmanager
def _store_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite://{tmp_path / 'calls.db'}"
    else:
        with start_redis(tmp_path) as redis:
            yield redis.url


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_killed_server_loses_no_acknowledged_turn(kind: str, tmp_path: Path) -> None:
    progress = [0] * CALLS
    with _store_url(kind, tmp_path) as url:
        with start_server("--listen", "127.0.0.1:0", "--store", url) as server:
            _drive(
                server.address,
                progress,
                KILL_AFTER_ACKS,
                lambda: server.process.send_signal(signal.SIGKILL),
            )
            server.process.wait(_BOUND_S)
            server.stopped = True
        assert 0 < sum(progress) < CALLS * len(SCRIPT), "the kill must land mid-load"
        with start_server("--listen", "127.0.0.1:0", "--store", url) as server:
            _drive(server.address, progress)
            assert progress == [len(SCRIPT)] * CALLS
            end_node, end_over = uninterrupted_end()
            with grpc.insecure_channel(server.address) as channel:
                stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
                for call in range(CALLS):
                    history = stub.GetCall(
                        pb.GetCallRequest(call_id=f"crash-{call}"), timeout=_BOUND_S
                    )
                    assert [t.request.request_id for t in history.turns] == [
                        f"c{call}-r{step}" for step in range(len(SCRIPT))
                    ]
                    assert (history.call.node_id, history.call.dialogue_over) == (
                        end_node,
                        end_over,
                    )
