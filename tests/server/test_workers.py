"""`--workers N`: N server processes share one port (SO_REUSEPORT) and one store."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import grpc

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from tests.support.ports import free_port
from tests.support.scripted_calls import SCRIPT, scripted_request, uninterrupted_end
from tests.support.server_process import REPO_ROOT, start_server

_BOUND_S = 60


def test_two_workers_share_the_port_and_the_calls(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    store = f"sqlite://{tmp_path / 'calls.db'}"
    with start_server("--listen", address, "--store", store, "--workers", "2") as server:
        deadline = time.monotonic() + _BOUND_S
        while sum("listening on" in line for line in server.stdout_lines()) < 2:
            assert time.monotonic() < deadline, server.describe_failure()
            time.sleep(0.05)
        # A fresh channel per call spreads connections over both workers.
        for call in range(8):
            for step in range(len(SCRIPT)):
                with grpc.insecure_channel(address) as channel:
                    dialogue_pb2_grpc.DialogueServiceStub(channel).DecideNextAction(
                        scripted_request(call, step), timeout=_BOUND_S
                    )
        with grpc.insecure_channel(address) as channel:
            stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
            for call in range(8):
                history = stub.GetCall(pb.GetCallRequest(call_id=f"crash-{call}"), timeout=_BOUND_S)
                assert len(history.turns) == len(SCRIPT)
                assert (history.call.node_id, history.call.dialogue_over) == uninterrupted_end()
        assert server.stop() == 0


def test_workers_refuse_port_zero_and_the_memory_store() -> None:
    for args in (
        ["--listen", "127.0.0.1:0", "--store", "sqlite://x.db"],
        ["--listen", "127.0.0.1:1", "--store", "memory://"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "server", *args, "--workers", "2"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=_BOUND_S,
            check=False,
        )
        assert result.returncode == 2
        assert "--workers needs" in result.stderr
