"""The CloudCallCenter gateway in front of a real server running the demo flows, over HTTP."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx

from dialogue.v1 import dialogue_pb2 as pb
from tests.support.gateway import serve_gateway
from tests.support.grpc_server import request, serve
from tests.support.ports import closed_port_address

_BASE = {
    "Action": "Dialogue",
    "InstanceId": "af81a389-91f0-4157-8d82-720edd02b66a",
    "CallType": "Outbound",
    "CallingNumber": "10086",
    "CalledNumber": "13800138000",
    "ScenarioId": "10086",
}


def _turn(call_id: str, n: int, **params: str) -> dict[str, str]:
    return {**_BASE, "CallId": call_id, "Timestamp": f"2026-11-21T10:00:{n:02d}Z", **params}


async def _feedback(
    client: httpx.AsyncClient, params: dict[str, str], *, post: bool = False
) -> dict[str, Any]:
    answer = await (client.post("/", data=params) if post else client.get("/", params=params))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["Success"] is True
    assert body["Code"] == "OK"
    feedback: dict[str, Any] = body["Feedback"]
    assert feedback["Action"] in ("broadcast", "Hangup")
    return feedback


async def test_a_whole_call_by_voice_to_an_agent() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ccc", f"127.0.0.1:{served.running.port}") as client,
    ):
        greeting = await _feedback(client, _turn("c1", 1))
        assert "欢迎致电" in greeting["Content"]
        assert greeting["Action"] == "broadcast"
        ask = await _feedback(client, _turn("c1", 2, Utterance="我想查话费"), post=True)
        assert "手机号码" in ask["Content"]
        answer = await _feedback(client, _turn("c1", 3, Utterance="幺三八 零零一三 八零零零"))
        assert "13800138000" in answer["Content"]
        menu_by_spoken_key = await _feedback(client, _turn("c1", 4, Utterance="一"))
        assert "查询话费请按1" in menu_by_spoken_key["Content"]
        agent = await _feedback(client, _turn("c1", 5, Utterance="转人工"))
        assert agent["Action"] == "Hangup"
        assert "无法为您转接" in agent["Content"]
        assert "transfer" in agent["ActionParams"]
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id="c1"), timeout=30)
        assert snapshot.call.node_id == "agent"


async def test_goodbye_and_hangup_end_the_call() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ccc", f"127.0.0.1:{served.running.port}") as client,
    ):
        await _feedback(client, _turn("c2", 1))
        await _feedback(client, _turn("c2", 2, Utterance="流量"))
        bye = await _feedback(client, _turn("c2", 3, Utterance="没有了，再见"))
        assert bye["Action"] == "Hangup"
        assert "再见" in bye["Content"]
        after = await _feedback(client, _turn("c2", 4, ActionKey="Hangup"))
        assert (after["Action"], after["Content"]) == ("Hangup", "")


async def test_a_retried_request_gets_the_identical_answer_and_advances_once() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ccc", f"127.0.0.1:{served.running.port}") as client,
    ):
        await client.get("/", params=_turn("c3", 1))
        first = await client.get("/", params=_turn("c3", 2, Utterance="话费"))
        second = await client.get("/", params=_turn("c3", 2, Utterance="话费"))
        assert first.content == second.content
        after = await _feedback(client, _turn("c3", 3, Utterance="13800138000"))
        assert "13800138000" in after["Content"]


async def test_xml_answers_when_asked() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ccc", f"127.0.0.1:{served.running.port}") as client,
    ):
        answer = await client.get("/", params=_turn("c4", 1, Format="XML"))
        assert answer.status_code == 200
        root = ElementTree.fromstring(answer.content)
        assert root.tag == "DialogueResponse"
        assert root.findtext("Success") == "true"
        assert "欢迎致电" in (root.findtext("Feedback/Content") or "")


async def test_bad_requests_get_the_error_envelope_not_a_5xx() -> None:
    async with (
        serve() as served,
        serve_gateway(
            "aliyun-ccc", f"127.0.0.1:{served.running.port}", env={"ALIYUN_CCC_INSTANCES": "known"}
        ) as client,
    ):
        missing = await client.get("/", params={"Action": "Dialogue", "InstanceId": "known"})
        assert missing.status_code == 400
        assert missing.json()["Code"] == "MissingParameter"
        assert "CallId" in missing.json()["Message"]
        unknown = await client.get("/", params={**_turn("c5", 1), "InstanceId": "other"})
        assert unknown.status_code == 404
        assert unknown.json()["Code"] == "NotExist.Instance"
        assert unknown.json()["Success"] is False


async def test_a_dead_server_still_gets_a_valid_answer() -> None:
    async with serve_gateway("aliyun-ccc", closed_port_address(), deadline_s=0.5) as client:
        fallback = await _feedback(client, _turn("c6", 1))
        # The test fallback transfers, which this API can only render as announce + hang up.
        assert fallback["Action"] == "Hangup"
        assert "无法为您转接" in fallback["Content"]


async def test_a_server_slower_than_the_deadline_still_gets_a_valid_answer(tmp_path: Path) -> None:
    database = tmp_path / "calls.db"
    async with serve(f"sqlite://{database}") as served:
        await served.decide(request("w", "r", call_started={}))
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            async with serve_gateway(
                "aliyun-ccc", f"127.0.0.1:{served.running.port}", deadline_s=0.3
            ) as client:
                fallback = await _feedback(client, _turn("c7", 1))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    assert "无法为您转接" in fallback["Content"]


async def test_unsigned_silent_turns_are_turns_and_a_resend_is_a_retry() -> None:
    """No SignatureNonce/Timestamp: byte-identical silences are each a turn (window 0 here, as
    the turns of a test come faster than a real IVR's), so the no-input budget runs out."""
    unsigned = {**_BASE, "CallId": "ccc-unsigned-1"}
    async with (
        serve() as served,
        serve_gateway(
            "aliyun-ccc",
            f"127.0.0.1:{served.running.port}",
            {"ALIYUN_CCC_RETRY_WINDOW_MS": "0"},
        ) as client,
    ):
        seen: list[dict[str, Any]] = []
        for _ in range(8):
            reply = await client.get("/", params=unsigned)
            seen.append(reply.json())
            if seen[-1]["Feedback"]["Action"] == "Hangup":
                break
        assert len({body["RequestId"] for body in seen}) == len(seen)
        assert seen[-1]["Feedback"]["Action"] == "Hangup"
        assert all(body["Feedback"]["Content"] for body in seen)
    async with (
        serve() as served,
        serve_gateway(
            "aliyun-ccc",
            f"127.0.0.1:{served.running.port}",
            {"ALIYUN_CCC_RETRY_WINDOW_MS": "600000"},  # wide: no test depends on the clock
        ) as client,
    ):
        first = await client.get("/", params={**unsigned, "CallId": "ccc-unsigned-2"})
        again = await client.get("/", params={**unsigned, "CallId": "ccc-unsigned-2"})
        # Within the window a byte-identical resend is the same turn: the same answer.
        assert again.text == first.text
