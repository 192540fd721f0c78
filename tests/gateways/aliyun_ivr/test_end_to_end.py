"""The Aliyun intelligent-voice gateway in front of a real server running the demo flows."""

from __future__ import annotations

import json
from typing import Any

import httpx

from dialogue.v1 import dialogue_pb2 as pb
from tests.support.gateway import serve_gateway
from tests.support.grpc_server import serve
from tests.support.ports import closed_port_address

CALLBACK = "/aliyun/ivr/callback"
REPORT = "/aliyun/ivr/report"
_ENV = {"ALIYUN_TRANSFER_NUMBERS": "10086001=+8610086001"}


class Caller:
    """Plays the platform's side of one call: numbered callbacks, one per caller turn."""

    def __init__(self, client: httpx.AsyncClient, call_id: str) -> None:
        self.client = client
        self.call_id = call_id
        self.clock = 1_700_000_000_000

    def fields(self, content_type: str, content: dict[str, Any]) -> dict[str, str]:
        self.clock += 1000
        return {
            "call_id": self.call_id,
            "timestamp": str(self.clock),
            "content_type": content_type,
            "content": json.dumps(content, ensure_ascii=False),
        }

    async def send(
        self, content_type: str, content: dict[str, Any], *, post: bool = False
    ) -> dict[str, Any]:
        fields = self.fields(content_type, content)
        reply = await (
            self.client.post(CALLBACK, data=fields)
            if post
            else self.client.get(CALLBACK, params=fields)
        )
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        assert answer["result"] == "success", answer
        data: dict[str, Any] = answer["data"]
        assert data["call_id"] == self.call_id
        return data


def spoken(data: dict[str, Any]) -> str:
    """Everything the answer makes the platform say."""
    return " ".join(json.loads(data.get("action_code_param") or "{}").values())


async def test_a_whole_inbound_call_by_key_and_voice_to_an_agent() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}", _ENV) as client,
    ):
        caller = Caller(client, "100001616500^100001871490")
        greeting = await caller.send(
            "callin", {"caller": "13800138000", "callee": "10086", "orgcallee": "10086"}
        )
        assert greeting["action"] == "answer"
        # callin cannot collect keys: it plays nothing and asks to be called back at once.
        assert greeting["action_code"] == ""
        assert greeting["mute_time"] == 1000
        # That silence is the platform's: the menu is asked where keys count, with no strike.
        menu = await caller.send("mute", {"dynamic_id": greeting.get("dynamic_id", "")})
        assert menu["action"] == "dtmf"
        assert "欢迎致电" in spoken(menu)
        assert "查询话费请按1" in spoken(menu)
        ask = await caller.send("dtmf", {"dtmf_digits": "1"})
        assert "手机号码" in spoken(ask)
        answer = await caller.send(
            "normal", {"words": "幺三八 零零一三 八零零零", "begin_offset": "1000"}, post=True
        )
        assert "13800138000" in spoken(answer)
        agent = await caller.send("normal", {"words": "我要转人工"})
        assert agent["action"] == "transfer"
        assert agent["number"] == "010086001"  # +86 in national form
        assert "转接人工客服" in spoken(agent)
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id=caller.call_id), timeout=30)
        assert snapshot.call.node_id == "agent"


async def test_goodbye_then_the_report_ends_the_call_and_late_callbacks_do_not_restart_it() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}", _ENV) as client,
    ):
        caller = Caller(client, "call-2")
        await caller.send("callin", {"caller": "13800138000", "callee": "10086"})
        await caller.send("normal", {"words": "流量"})
        bye = await caller.send("dtmf", {"dtmf_digits": "2"})
        assert bye["action"] == "hangup"
        report = [
            {
                "call_id": "call-2",
                "hangup_direction": "机器",
                "status_code": "200000",
                "status_msg": "ok",
                "duration": "61",
            }
        ]
        for _ in range(2):  # the platform may deliver a batch twice
            ack = await client.post(REPORT, json=report)
            assert (ack.status_code, ack.json()) == (200, {"code": 0, "msg": "接收成功"})
        late = await caller.send("normal", {"words": "喂？"})
        assert late["action"] in ("hangup", "donothing")
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id="call-2"), timeout=30)
        assert snapshot.call.dialogue_over


async def test_a_retried_callback_gets_the_identical_answer_and_advances_once() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}", _ENV) as client,
    ):
        caller = Caller(client, "call-3")
        await caller.send("callin", {"caller": "13800138000", "callee": "10086"})
        press = caller.fields("dtmf", {"dtmf_digits": "1"})
        first = await client.get(CALLBACK, params=press)
        second = await client.get(CALLBACK, params=press)
        assert first.content == second.content
        snapshot = await served.stub.GetCall(pb.GetCallRequest(call_id="call-3"), timeout=30)
        assert snapshot.call.turn_count == 2


async def test_an_outbound_call_starts_on_its_first_turn() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}", _ENV) as client,
    ):
        caller = Caller(client, "outbound-1")
        first = await caller.send("normal", {"words": "喂，你好"})
        assert "欢迎致电" in spoken(first)


async def test_the_vendor_doc_example_query_with_curly_quotes_is_understood() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}", _ENV) as client,
    ):
        content = '{"role“: “B”,”identity”: “id2”,”words”: “你好”,”begin_offset”: “1000”,”end_offset”: “9000”,”begin_time”: “2017-06-01 10:00:00”}'
        reply = await client.get(
            CALLBACK,
            params={
                "call_id": "100001616500^100001871490",
                "timestamp": "1504174341229",
                "content_type": "normal",
                "content": content,
            },
        )
        assert reply.status_code == 200
        assert reply.json()["result"] == "success"


async def test_bad_input_gets_the_failure_format_and_stores_nothing() -> None:
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}", _ENV) as client,
    ):
        cases = [
            {"timestamp": "1", "content_type": "mute", "content": "{}"},
            {"call_id": "bad-1", "timestamp": "soon", "content_type": "mute", "content": "{}"},
            {"call_id": "bad-1", "timestamp": "1", "content_type": "video", "content": "{}"},
            {"call_id": "bad-1", "timestamp": "1", "content_type": "normal", "content": "{words"},
        ]
        for fields in cases:
            reply = await client.get(CALLBACK, params=fields)
            assert 400 <= reply.status_code < 500
            body = reply.json()
            assert (body["result"], body["data"]) == ("fail", {})
            assert body["msg"]
        reports = await client.post(REPORT, json={"not": "an array"})
        assert reports.status_code == 400
        error = None
        try:
            await served.stub.GetCall(pb.GetCallRequest(call_id="bad-1"), timeout=30)
        except Exception as exc:  # NOT_FOUND: nothing was stored
            error = exc
        assert error is not None


async def test_the_callback_token_is_enforced_when_configured() -> None:
    env = {**_ENV, "ALIYUN_CALLBACK_TOKEN": "s3cret"}
    async with (
        serve() as served,
        serve_gateway("aliyun-ivr", f"127.0.0.1:{served.running.port}", env) as client,
    ):
        caller = Caller(client, "call-4")
        fields = caller.fields("callin", {"caller": "13800138000", "callee": "10086"})
        refused = await client.get(CALLBACK, params=fields)
        assert refused.status_code == 401
        assert refused.json()["result"] == "fail"
        by_query = await client.get(CALLBACK, params={**fields, "token": "s3cret"})
        assert by_query.json()["result"] == "success"
        by_header = await client.get(
            CALLBACK, params=fields, headers={"X-Callback-Token": "s3cret"}
        )
        assert by_header.content == by_query.content
        report = await client.post(REPORT, json=[{"call_id": "call-4"}])
        assert report.status_code == 401


async def test_a_dead_server_still_gets_a_valid_answer_and_reports_are_not_acknowledged() -> None:
    async with serve_gateway(
        "aliyun-ivr",
        closed_port_address(),
        {"ALIYUN_TRANSFER_NUMBERS": "9999=+8610086"},
        deadline_s=0.5,
    ) as client:
        caller = Caller(client, "call-5")
        rescue = await caller.send("normal", {"words": "你好"})
        assert rescue["action"] == "transfer"
        assert rescue["number"] == "10086"  # +86 in national form
        assert "系统繁忙" in spoken(rescue)
        report = await client.post(REPORT, json=[{"call_id": "call-5", "hangup_direction": "用户"}])
        assert report.status_code == 503
