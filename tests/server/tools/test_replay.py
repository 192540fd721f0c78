"""`dialogue replay`: a call recorded by a real server process, replayed against the same flows
(no differences), a changed copy (differences, exit 1), and offline from an exported file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from server.config import DEMO_FLOWS
from tests.server.tools.conftest import Run
from tests.support.server_process import MEMORY_SERVER_ARGS, REPO_ROOT, start_server

CALL_ID = "replay-call-1"
RPC_TIMEOUT_S = 30
SUBPROCESS_TIMEOUT_S = 120
# What the caller did: start, ask for the bill, say the number, ask for an agent, who is busy.
EVENTS: list[dict[str, object]] = [
    {"call_started": {}},
    {"speech_recognized": {"text": "我想查话费"}},
    {"speech_recognized": {"text": "幺三八 零零一三 八零零零"}},
    {"digits_entered": {"digits": "0"}},
    {"transfer_finished": {"outcome": pb.TRANSFER_OUTCOME_FAILED}},
]


@pytest.fixture(scope="module")
def server_with_call() -> Iterator[str]:
    """A real server process that has served one whole call (CALL_ID); yields its address."""
    with start_server(*MEMORY_SERVER_ARGS) as server:
        channel = grpc.insecure_channel(server.address)
        try:
            stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
            for number, event in enumerate(EVENTS, start=1):
                request = pb.DecideNextActionRequest(request_id=f"r{number}", **event)  # type: ignore[arg-type]
                request.call.call_id = CALL_ID
                request.call.flow_selector = "10086"
                request.call.platform = pb.PLATFORM_OTHER
                stub.DecideNextAction(request, timeout=RPC_TIMEOUT_S)
        finally:
            channel.close()
        yield server.address


@pytest.fixture
def changed_flows(tmp_path: Path) -> Path:
    """A copy of the demo flows where the bill choice leads to the data plan, in a new version."""
    flows = tmp_path / "flows"
    shutil.copytree(DEMO_FLOWS, flows)
    path = flows / "carrier-zh.yaml"
    text = path.read_text(encoding="utf-8")
    changed = text.replace('version: "2026.11.1"', 'version: "2026.11.2"').replace(
        "keywords: [话费, 账单, 余额, 查话费, 缴费]\n        next: bill_phone",
        "keywords: [话费, 账单, 余额, 查话费, 缴费]\n        next: data_plan",
    )
    assert changed.count("2026.11.2") == 1
    assert "next: data_plan" in changed
    path.write_text(changed, encoding="utf-8")
    return flows


def test_replaying_against_the_same_flows_finds_no_difference(
    run: Run, server_with_call: str
) -> None:
    result = run("replay", "--call", CALL_ID, "--server", server_with_call)
    assert result.status == 0, result.out + result.err
    assert result.lines[0].startswith(
        f"replaying call {CALL_ID} from {server_with_call}: 5 turns, recorded with carrier-zh "
        "2026.11.1; now against carrier-zh 2026.11.1 ("
    )
    assert result.lines[1:] == [
        "turn 1 call_started: same (play_and_listen at main_menu)",
        "turn 2 speech_recognized '我想查话费': same (play_and_listen at bill_phone)",
        "turn 3 speech_recognized '幺三八 零零一三 八零零零': same (play_and_listen at anything_else)",
        "turn 4 digits_entered '0': same (play_and_transfer at agent)",
        "turn 5 transfer_finished: same (play_and_hang_up at agent_busy)",
        "all 5 turns decided the same",
    ]


def test_replaying_against_a_changed_flow_shows_where_decisions_differ(
    run: Run, server_with_call: str, changed_flows: Path
) -> None:
    result = run(
        "replay", "--call", CALL_ID, "--server", server_with_call, "--flows", str(changed_flows)
    )
    assert result.status == 1
    assert "now against carrier-zh 2026.11.2 (" in result.lines[0]
    assert result.lines[1] == "turn 1 call_started: same (play_and_listen at main_menu)"
    assert result.lines[2] == "turn 2 speech_recognized '我想查话费': DIFFERS"
    differences = result.lines[3:7]
    assert differences[0] == "  node: recorded bill_phone, replayed anything_else"
    assert differences[1].startswith("  prompts: recorded 请输入或说出您要查询的11位手机号码")
    assert differences[2].startswith("           replayed 您当前的套餐包含每月30GB国内流量")
    # The agent is reached either way, but without the phone number the caller never gave.
    turn_4 = result.lines.index("turn 4 digits_entered '0': DIFFERS")
    assert result.lines[turn_4 + 1] == (
        '  transfer.associated_data.phone: recorded "13800138000", replayed null'
    )
    assert result.lines[-2:] == [
        "turn 5 transfer_finished: same (play_and_hang_up at agent_busy)",
        "3 of 5 turns differ",
    ]


def test_a_given_flow_file_is_replayed_against(
    run: Run, server_with_call: str, changed_flows: Path
) -> None:
    result = run(
        "replay",
        "--call",
        CALL_ID,
        "--server",
        server_with_call,
        "--flow-version",
        str(changed_flows / "carrier-zh.yaml"),
    )
    assert result.status == 1
    assert result.lines[-1] == "3 of 5 turns differ"


def test_an_exported_history_replays_offline(
    run: Run, server_with_call: str, changed_flows: Path, tmp_path: Path
) -> None:
    exported = tmp_path / "turns.jsonl"
    fetched = run(
        "replay", "--call", CALL_ID, "--server", server_with_call, "--export", str(exported)
    )
    assert fetched.status == 0
    assert fetched.lines[0] == f"wrote 5 turns to {exported}"
    records = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert [record["number"] for record in records] == [1, 2, 3, 4, 5]
    assert records[1]["request"]["speech_recognized"] == {"text": "我想查话费"}
    assert records[1]["response"]["diagnostics"]["node_id"] == "bill_phone"
    offline = run("replay", "--from-file", str(exported))
    assert offline.status == 0
    assert offline.lines[-1] == "all 5 turns decided the same"
    changed = run("replay", "--from-file", str(exported), "--flows", str(changed_flows))
    assert (changed.status, changed.lines[-1]) == (1, "3 of 5 turns differ")


def test_an_unknown_call_exits_2(run: Run, server_with_call: str) -> None:
    result = run("replay", "--call", "no-such-call", "--server", server_with_call)
    assert result.status == 2
    assert "NOT_FOUND" in result.err


def test_an_unreachable_server_exits_2(run: Run) -> None:
    result = run("replay", "--call", CALL_ID, "--server", "127.0.0.1:1", "--timeout", "5")
    assert result.status == 2
    assert "UNAVAILABLE" in result.err or "DEADLINE_EXCEEDED" in result.err


def test_a_broken_history_file_is_reported_at_its_line(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "turns.jsonl"
    good = {
        "request": {"request_id": "r1", "call": {"call_id": "c"}, "call_started": {}},
        "response": {},
    }
    path.write_text(json.dumps(good) + "\n{not json\n", encoding="utf-8")
    result = run("replay", "--from-file", str(path))
    assert result.status == 2
    assert f"{path}:2: " in result.err


def test_a_history_that_lost_its_first_turns_cannot_be_replayed(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "turns.jsonl"
    turn = {
        "number": 7,
        "request": {"request_id": "r7", "call": {"call_id": "c"}, "no_input": {}},
        "response": {},
    }
    path.write_text(json.dumps(turn) + "\n", encoding="utf-8")
    result = run("replay", "--from-file", str(path))
    assert result.status == 2
    assert "starts at turn 7" in result.err


def test_python_m_server_tools_replays_a_call(server_with_call: str) -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.tools",
            "replay",
            "--call",
            CALL_ID,
            "--server",
            server_with_call,
        ],
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()
    assert completed.stdout.decode().splitlines()[-1] == "all 5 turns decided the same"
