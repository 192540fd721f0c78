"""A Node.js client built from the .proto at run time drives a call through the real server.

Proves the contract as shipped in protos/ works for a second language and a second gRPC
implementation (grpc-js), not only for the Python code generated from it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from tests.support.server_process import REPO_ROOT, RunningServer

DRIVE_CALL = REPO_ROOT / "tests" / "protos" / "node" / "drive_call.js"

# The script bounds every RPC itself; this only bounds a wedged node process.
_PROCESS_TIMEOUT_S = 180.0


def drive_call(address: str) -> list[dict[str, Any]]:
    """Run the Node.js client against `address`; its output lines, parsed."""
    node = shutil.which("node")
    assert node is not None, "node is not on PATH; the Node.js client test needs it"
    result = subprocess.run(
        [node, str(DRIVE_CALL), address],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=_PROCESS_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, (
        f"drive_call.js exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert all(isinstance(record, dict) for record in records), result.stdout
    return records


def tts_texts(response: dict[str, Any]) -> list[str]:
    """The TTS texts of a play_and_listen response (proto-loader keepCase objects)."""
    items = response["play_and_listen"]["prompts"]["items"]
    return [item["tts"]["text"] for item in items if item.get("tts")]


def test_node_client_drives_a_call_through_the_demo_flow(running_server: RunningServer) -> None:
    records = drive_call(running_server.address)

    assert [record["step"] for record in records] == [
        "call_started",
        "digits_entered",
        "digits_entered",
        "call_ended",
        "get_call",
    ]
    welcome, bill_phone, anything_else, ended, get_call = (r["response"] for r in records)
    call_id = records[0]["call_id"]

    # oneofs: true gives the name of the action that is set.
    assert welcome["action"] == "play_and_listen"
    assert welcome["diagnostics"]["node_id"] == "main_menu"
    assert any("欢迎致电" in text for text in tts_texts(welcome)), welcome
    assert welcome["dialogue_over"] is False

    assert bill_phone["action"] == "play_and_listen"
    assert bill_phone["diagnostics"]["node_id"] == "bill_phone"
    assert bill_phone["dialogue_over"] is False

    assert anything_else["action"] == "play_and_listen"
    assert anything_else["diagnostics"]["node_id"] == "anything_else"
    assert any("13800138000" in text for text in tts_texts(anything_else)), anything_else
    assert anything_else["dialogue_over"] is False

    assert ended["action"] == "end_dialogue"
    assert ended["end_dialogue"] is not None
    assert ended["dialogue_over"] is True

    snapshot = get_call["call"]
    assert snapshot["call_id"] == call_id
    assert snapshot["turn_count"] == 4
    assert snapshot["dialogue_over"] is True
    turns = get_call["turns"]
    assert [turn["number"] for turn in turns] == [1, 2, 3, 4]
    # The turns record exactly the requests the client sent, in order.
    assert [turn["request"]["request_id"] for turn in turns] == [
        record["request_id"] for record in records[:4]
    ]
    assert [turn["request"]["event"] for turn in turns] == [
        "call_started",
        "digits_entered",
        "digits_entered",
        "call_ended",
    ]
    assert turns[-1]["response"]["dialogue_over"] is True
