"""`dialogue-server` as a process: refusing bad flows, configuration, graceful shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from server.config import DEFAULT_LISTEN, DEFAULT_STORE, DEMO_FLOWS, parse_config, redacted
from tests.support.server_process import MEMORY_SERVER_ARGS, REPO_ROOT, start_server

_BOUND_S = 60


def test_an_invalid_flow_stops_start_up_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "flow: broken\nversion: '1'\nstart: hello\ndefaults:\n  on_max_attempts: hello\nnodes:\n"
        "  hello:\n    type: say\n    prompt: hi\n    next: nowhere\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "server",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "memory://",
            "--flows",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=_BOUND_S,
        check=False,
    )
    assert result.returncode == 2
    assert (
        f"{tmp_path / 'broken.yaml'}:10: node 'hello'.next: unknown node 'nowhere'" in result.stderr
    )
    assert "listening" not in result.stdout


def test_an_unsupported_store_url_stops_start_up() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--listen", "127.0.0.1:0", "--store", "mongodb://x"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=_BOUND_S,
        check=False,
    )
    assert result.returncode == 2
    assert "unsupported session store URL" in result.stderr


def test_flags_override_environment_which_overrides_defaults() -> None:
    defaults = parse_config([], env={})
    assert (defaults.listen, defaults.store, defaults.flows) == (
        DEFAULT_LISTEN,
        DEFAULT_STORE,
        DEMO_FLOWS,
    )
    from_env = parse_config(
        [], env={"DIALOGUE_LISTEN": "127.0.0.1:6000", "DIALOGUE_STORE": "memory://"}
    )
    assert (from_env.listen, from_env.store) == ("127.0.0.1:6000", "memory://")
    flagged = parse_config(
        ["--listen", "127.0.0.1:7000"], env={"DIALOGUE_LISTEN": "127.0.0.1:6000"}
    )
    assert flagged.listen == "127.0.0.1:7000"


def test_environment_configures_the_process(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DIALOGUE_LISTEN": "127.0.0.1:0",
        "DIALOGUE_STORE": f"sqlite://{tmp_path / 'env.db'}",
    }
    with start_server(env=env) as server, grpc.insecure_channel(server.address) as channel:
        stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
        started = pb.DecideNextActionRequest(
            request_id="r1", call=pb.Call(call_id="c1"), call_started=pb.CallStarted()
        )
        assert stub.DecideNextAction(started, timeout=_BOUND_S).diagnostics.node_id == "main_menu"
    assert (tmp_path / "env.db").exists()


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_either_event_loop_serves_calls_and_stops_cleanly(loop: str) -> None:
    assert parse_config(["--event-loop", loop], env={}).event_loop == loop
    with (
        start_server(*MEMORY_SERVER_ARGS, "--event-loop", loop) as server,
        grpc.insecure_channel(server.address) as channel,
    ):
        stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
        started = pb.DecideNextActionRequest(
            request_id="r1", call=pb.Call(call_id="c1"), call_started=pb.CallStarted()
        )
        assert stub.DecideNextAction(started, timeout=_BOUND_S).diagnostics.node_id == "main_menu"


def test_sigterm_lets_accepted_calls_finish_then_exits_zero() -> None:
    outcomes: list[grpc.StatusCode] = []
    with start_server(*MEMORY_SERVER_ARGS) as server:
        channel = grpc.insecure_channel(server.address)
        stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
        started = threading.Event()

        def load() -> None:
            for n in range(200):
                message = pb.DecideNextActionRequest(
                    request_id=f"r{n}", call=pb.Call(call_id=f"c{n}"), call_started=pb.CallStarted()
                )
                try:
                    stub.DecideNextAction(message, timeout=_BOUND_S)
                    outcomes.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    outcomes.append(exc.code())
                started.set()

        worker = threading.Thread(target=load)
        worker.start()
        started.wait(_BOUND_S)
        server.process.send_signal(signal.SIGTERM)
        worker.join(_BOUND_S)
        channel.close()
        assert server.process.wait(_BOUND_S) == 0
        assert server.stop() == 0
    assert grpc.StatusCode.OK in outcomes
    # Once shutdown begins new calls are refused (UNAVAILABLE, or CANCELLED for one caught
    # arriving as the listener closes); no call fails with an error of the service's own.
    assert set(outcomes) <= {
        grpc.StatusCode.OK,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.CANCELLED,
    }


def test_sigint_exits_zero() -> None:
    with start_server(*MEMORY_SERVER_ARGS) as server:
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(_BOUND_S) == 0
        assert server.stop() == 0


def test_store_passwords_never_reach_the_log() -> None:
    assert redacted("redis://:hunter2@10.0.0.5:6379/0") == "redis://:***@10.0.0.5:6379/0"
    assert redacted("rediss://app:hunter2@redis:6380/1") == "rediss://app:***@redis:6380/1"
    assert redacted("sqlite://var/dialogue.db") == "sqlite://var/dialogue.db"
