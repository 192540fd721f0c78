"""The Huawei ODFS gateway over HTTP in front of a real server running the demo flows.

The gateway is built directly (create_app + routes.build_router) so that the token clock can
be injected; a real redis-server holds the transcripts of the speech turns.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import redis

from dialogue.v1 import dialogue_pb2 as pb
from gateways.app import create_app
from gateways.decider import Decider
from gateways.huawei_odfs import routes
from tests.support.gateway import TEST_FALLBACK, serve_app
from tests.support.grpc_server import Served, request, serve
from tests.support.ports import closed_port_address
from tests.support.redis_server import RedisServer, start_redis

PROCESS = routes.PROCESS_PATH
TOKEN = routes.TOKEN_PATH
CREDENTIALS = {"HUAWEI_ODFS_APP_KEY": "tenant-1", "HUAWEI_ODFS_APP_SECRET": "s3cret"}


class Clock:
    """A wall clock the test moves by hand (tokens expire, hang-ups get their times)."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def serve_huawei(
    server_address: str,
    env: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], float] = time.time,
    deadline_s: float = 5.0,
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway on a free 127.0.0.1 port in front of server_address; yields a client."""
    decider = Decider(server_address, deadline_s, TEST_FALLBACK)
    router = routes.build_router(decider, env or {}, clock=clock)
    app = create_app("huawei-odfs", decider, router)
    async with serve_app(app) as client:
        yield client


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with start_redis(tmp_path) as server:
        yield server


class Ivr:
    """Plays the IVR's side of one call: echoes inter_idx, carries the token."""

    def __init__(
        self, client: httpx.AsyncClient, call_id: str, token: str = "", path: str = PROCESS
    ) -> None:
        self.client = client
        self.call_id = call_id
        self.token = token
        self.path = path
        self.inter_idx = ""

    def body(
        self, inaction: int, inparams: Mapping[str, str], extparams: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        params = {"call_id": self.call_id, "call_dst_id": "10086", **inparams}
        if self.inter_idx and inaction != 8:
            params.setdefault("inter_idx", self.inter_idx)
        if self.token:
            params["auth_token"] = self.token
        return {
            "userid": self.call_id,
            "inaction": inaction,
            "seat": "vir",
            "inparams": params,
            "extparams": dict(extparams or {}),
        }

    async def post(self, body: dict[str, Any]) -> httpx.Response:
        return await self.client.post(self.path, json=body)

    async def send(
        self, inaction: int, inparams: Mapping[str, str], extparams: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """Sends one request; returns the answer, checked for the envelope."""
        reply = await self.post(self.body(inaction, inparams, extparams))
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        assert answer["ret"] == 0, answer
        assert answer["userid"] == self.call_id
        assert answer["outaction"] in (9, 10, 11, 12)
        params: dict[str, str] = answer["outparams"]
        assert params["call_id"] == self.call_id
        assert all(isinstance(value, str) for value in params.values())
        self.inter_idx = params.get("inter_idx", self.inter_idx)
        return answer


async def _token(client: httpx.AsyncClient) -> str:
    reply = await client.post(TOKEN, json={"appKey": "tenant-1", "appSecret": "s3cret"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["errorCode"], body["expireTime"]) == (0, 3600)
    token: str = body["authToken"]
    return token


async def _snapshot(served: Served, call_id: str) -> pb.GetCallResponse:
    response: pb.GetCallResponse = await served.stub.GetCall(
        pb.GetCallRequest(call_id=call_id), timeout=30
    )
    return response


async def _not_stored(served: Served, call_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _snapshot(served, call_id)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def _text(answer: dict[str, Any]) -> str:
    text: str = answer["outparams"].get("prompt_text", "")
    return text


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime(routes.TIME_FORMAT)


# -- whole calls -----------------------------------------------------------------------------------


async def test_a_whole_call_by_keys_and_voice_to_an_agent(redis_server: RedisServer) -> None:
    call = "1528780879-9581"
    with redis.Redis.from_url(redis_server.url) as transcripts:
        transcripts.set(f"asr:{call}", "幺三八 零零一三 八零零零".encode())
    # A generous lookup bound: a loaded machine must not turn the transcript into a no-match.
    env = {
        **CREDENTIALS,
        "HUAWEI_ASR_REDIS_URL": redis_server.url,
        "HUAWEI_ASR_REDIS_TIMEOUT_MS": "10000",
    }
    async with serve() as served, serve_huawei(f"127.0.0.1:{served.running.port}", env) as client:
        ivr = Ivr(client, call, await _token(client))
        greeting = await ivr.send(
            8, {"call_sor_id": "13800138000"}, {"transin_data": "95,22714,0,,1,1,,test_gdj_01005"}
        )
        assert greeting["outaction"] == 9
        assert "欢迎致电" in _text(greeting)
        assert "查询话费请按1" in _text(greeting)
        assert greeting["outparams"]["model_type"] == "1110100"
        assert greeting["outparams"]["inter_idx"] == "1"

        ask = await ivr.send(9, {"flow_result_type": "2", "input": "1"})
        assert "手机号码" in _text(ask)
        assert ask["outparams"]["model_type"] == "1111101"
        assert ask["outparams"]["inter_idx"] == "2"

        number = await ivr.send(
            9, {"flow_result_type": "1", "input": f"asr:{call}@2", "inter_no": "2"}
        )
        assert "13800138000" in _text(number)

        # The engine's "人工" command: the transfer prompt plays first (outaction=11 plays
        # nothing), then the playover is answered with the transfer.
        # Huawei can tell the queue's figures: the flow asks first (outaction 12), then the
        # IVR's next request carries them and the caller hears their place before the transfer.
        query = await ivr.send(9, {"flow_result_type": "1", "input": "我要转人工"})
        assert query["outaction"] == 12
        assert query["outparams"]["prompt_type"] == "2"
        agent = await ivr.send(
            9,
            {"flow_result_type": "3", "input": "playover"},
            {"queueIndex": "2", "agentCount": "4", "estimateTime": "60", "idleAgentCount": "0"},
        )
        assert agent["outaction"] == 9
        assert "您前面还有2位" in _text(agent)
        assert agent["outparams"]["model_type"] == "1000000"
        assert "转接人工客服" in _text(agent)
        transfer = await ivr.send(9, {"flow_result_type": "3", "input": "playover"})
        assert transfer["outaction"] == 11
        params = transfer["outparams"]
        assert (params["trans_type"], params["route_value"]) == ("1", "10086001")
        assert params["call_sor_id"] == "13800138000"
        # What the flow collected (the caller's number), with the IVR's own data kept inside.
        collected = json.loads(params["trans_data"])
        assert collected["transin_data"] == "95,22714,0,,1,1,,test_gdj_01005"

        connected = await ivr.send(
            11, {"trans_result": "0", "begin_trans": "20260101 10:01:00", "end_trans": "x-end"}
        )
        assert connected["outaction"] == 10
        # The gateway's clock for both times, never the IVR's opaque "x-end".
        assert re.fullmatch(r"\d{10}:\d\d:\d\d", connected["outparams"]["end_time"])
        assert connected["outparams"]["call_sor_id"] == "13800138000"
        bye = await ivr.send(11, {"input": "hangup"})
        assert bye["outaction"] == 10

        snapshot = await _snapshot(served, call)
        assert snapshot.call.node_id == "agent"
        assert snapshot.call.dialogue_over
        assert snapshot.turns[0].request.call_data.passthrough == "95,22714,0,,1,1,,test_gdj_01005"


async def test_a_failed_transfer_plays_the_flows_goodbye_then_hangs_up() -> None:
    async with serve() as served, serve_huawei(f"127.0.0.1:{served.running.port}") as client:
        ivr = Ivr(client, "call-busy")
        await ivr.send(8, {"call_sor_id": "13800138000"})
        assert (await ivr.send(9, {"flow_result_type": "1", "input": "人工"}))["outaction"] == 12
        # The answer to the queue query carries no figures: the transfer is announced as before.
        announced = await ivr.send(9, {"flow_result_type": "3", "input": "playover"})
        assert "转接人工客服" in _text(announced)
        transfer = await ivr.send(9, {"flow_result_type": "3", "input": "playover"})
        assert transfer["outaction"] == 11
        busy = await ivr.send(11, {"trans_result": "1"})
        assert busy["outaction"] == 9
        assert "人工客服正忙" in _text(busy)
        assert busy["outparams"]["model_type"] == "1000000"
        done = await ivr.send(9, {"flow_result_type": "3", "input": "playover"})
        assert done["outaction"] == 10
        assert (await ivr.send(9, {"flow_result_type": "3", "input": "hangup"}))["outaction"] == 10
        assert (await _snapshot(served, "call-busy")).call.dialogue_over


async def test_text_and_file_forms_of_speech_need_no_redis() -> None:
    async with serve() as served, serve_huawei(f"127.0.0.1:{served.running.port}") as client:
        ivr = Ivr(client, "call-text")
        await ivr.send(8, {"call_sor_id": "13800138000"})
        by_file = await ivr.send(
            9, {"flow_result_type": "1", "input": "/home/uap/asr/1_1.wav[我想查话费]"}
        )
        assert "手机号码" in _text(by_file)
        by_text = await ivr.send(9, {"flow_result_type": "1", "input": "13800138000"})
        assert "13800138000" in _text(by_text)


@pytest.mark.parametrize("transcripts", ["missing key", "redis down", "not configured"])
async def test_speech_without_a_transcript_is_a_no_match(transcripts: str, tmp_path: Path) -> None:
    with contextlib.ExitStack() as stack:
        env: dict[str, str] = {}
        if transcripts == "missing key":
            env["HUAWEI_ASR_REDIS_URL"] = stack.enter_context(start_redis(tmp_path)).url
        elif transcripts == "redis down":
            env["HUAWEI_ASR_REDIS_URL"] = f"redis://{closed_port_address()}/0"
        async with (
            serve() as served,
            serve_huawei(f"127.0.0.1:{served.running.port}", env) as client,
        ):
            ivr = Ivr(client, "call-nomatch")
            await ivr.send(8, {"call_sor_id": "13800138000"})
            again = await ivr.send(9, {"flow_result_type": "1", "input": "asr:nobody@1"})
            assert again["outaction"] == 9
            assert "没有听懂" in _text(again)
            snapshot = await _snapshot(served, "call-nomatch")
            assert snapshot.turns[-1].request.WhichOneof("event") == "no_match"


# -- idempotency ---------------------------------------------------------------------------------


async def test_a_retried_request_gets_the_identical_answer_and_advances_once() -> None:
    async with serve() as served, serve_huawei(f"127.0.0.1:{served.running.port}") as client:
        ivr = Ivr(client, "call-retry")
        start = ivr.body(8, {"call_sor_id": "13800138000"})
        first, second = await ivr.post(start), await ivr.post(start)
        assert first.content == second.content
        ivr.inter_idx = first.json()["outparams"]["inter_idx"]
        press = ivr.body(9, {"flow_result_type": "2", "input": "1"})
        third, fourth = await ivr.post(press), await ivr.post(press)
        assert third.content == fourth.content
        assert (await _snapshot(served, "call-retry")).call.turn_count == 2
        # A hang-up without times of its own: the retry still gets the same end_time.
        hangup = ivr.body(9, {"flow_result_type": "1", "input": "hangup"})
        fifth, sixth = await ivr.post(hangup), await ivr.post(hangup)
        assert fifth.content == sixth.content
        assert fifth.json()["outaction"] == 10
        snapshot = await _snapshot(served, "call-retry")
        assert snapshot.call.turn_count == 3
        assert snapshot.call.dialogue_over


async def test_hang_up_times_come_from_the_clock_and_stay_on_a_retry() -> None:
    clock = Clock()
    started = clock.now
    async with (
        serve() as served,
        serve_huawei(f"127.0.0.1:{served.running.port}", clock=clock) as client,
    ):
        ivr = Ivr(client, "call-times")
        await ivr.send(8, {"call_sor_id": "13800138000"})
        clock.now += 65
        hangup = ivr.body(9, {"flow_result_type": "1", "input": "hangup"})
        first = (await ivr.post(hangup)).json()
        clock.now += 30
        again = (await ivr.post(hangup)).json()
    assert first == again
    params = first["outparams"]
    assert (params["start_time"], params["end_time"]) == (_stamp(started), _stamp(started + 65))
    assert params["call_sor_id"] == "13800138000"
    assert params["release_reason"] == "0"


# -- every call ends the vendor's way ----------------------------------------------------------------


async def test_a_hangup_of_an_unknown_call_is_answered_10() -> None:
    async with serve() as served, serve_huawei(f"127.0.0.1:{served.running.port}") as client:
        ivr = Ivr(client, "never-seen")
        answer = await ivr.send(9, {"flow_result_type": "3", "input": "hangup"})
        assert answer["outaction"] == 10
        assert (await _snapshot(served, "never-seen")).call.dialogue_over


async def test_with_the_server_down_hangups_and_transfer_reports_are_answered_10() -> None:
    async with serve_huawei(closed_port_address(), deadline_s=0.5) as client:
        ivr = Ivr(client, "call-down")
        for inaction, inparams in [
            (9, {"flow_result_type": "1", "input": "hangup"}),
            (11, {"input": "hangup"}),
            (11, {"trans_result": "0"}),
        ]:
            assert (await ivr.send(inaction, inparams))["outaction"] == 10


# -- fallbacks ---------------------------------------------------------------------------------------


async def test_a_dead_server_still_gets_a_valid_answer_and_no_loop() -> None:
    async with serve_huawei(closed_port_address(), deadline_s=0.5) as client:
        ivr = Ivr(client, "call-dead")
        rescue = await ivr.send(8, {"call_sor_id": "13800138000"})
        assert rescue["outaction"] == 9
        assert "系统繁忙" in _text(rescue)
        assert rescue["outparams"]["model_type"] == "1000000"
        # The fallback's prompt was heard: the next fallback transfers at once.
        transfer = await ivr.send(9, {"flow_result_type": "3", "input": "playover"})
        assert transfer["outaction"] == 11
        assert transfer["outparams"]["route_value"] == "9999"
        assert transfer["outparams"]["call_sor_id"] == "13800138000"


async def test_a_server_slower_than_the_deadline_still_gets_a_valid_answer(tmp_path: Path) -> None:
    database = tmp_path / "calls.db"
    async with serve(f"sqlite://{database}") as served:
        await served.decide(request("warm", "r0", call_started={}))
        # Another writer holds the database: the server waits far longer than the deadline.
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            async with serve_huawei(f"127.0.0.1:{served.running.port}", deadline_s=0.3) as client:
                rescue = await Ivr(client, "call-slow").send(8, {"call_sor_id": "13800138000"})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
    assert rescue["outaction"] == 9
    assert "系统繁忙" in _text(rescue)


# -- authentication ------------------------------------------------------------------------------------


async def test_issued_tokens_expire_and_failures_never_reach_the_engine() -> None:
    clock = Clock()
    async with (
        serve() as served,
        serve_huawei(f"127.0.0.1:{served.running.port}", CREDENTIALS, clock=clock) as client,
    ):
        wrong = await client.post(TOKEN, json={"appKey": "tenant-1", "appSecret": "guess"})
        assert wrong.status_code == 401
        assert wrong.json()["errorCode"] == 900002
        unreadable = await client.post(
            TOKEN, content=b"{appKey", headers={"content-type": "application/json"}
        )
        assert unreadable.status_code == 400
        token = await _token(client)

        ivr = Ivr(client, "call-auth")
        missing = await ivr.post(ivr.body(8, {"call_sor_id": "13800138000"}))
        assert (missing.status_code, missing.json()["ret"]) == (401, 900001)
        forged = Ivr(client, "call-auth", "forged")
        refused = await forged.post(forged.body(8, {"call_sor_id": "13800138000"}))
        assert (refused.status_code, refused.json()["ret"]) == (401, 900002)
        assert refused.json()["userid"] == "call-auth"
        await _not_stored(served, "call-auth")

        ivr.token = token
        assert (await ivr.send(8, {"call_sor_id": "13800138000"}))["outaction"] == 9
        clock.now += 3600
        expired = await ivr.post(ivr.body(9, {"flow_result_type": "2", "input": "1"}))
        assert (expired.status_code, expired.json()["ret"]) == (401, 900001)
        # The end of the call is still answered the vendor's way, but the engine is not told,
        # and nothing remembered about the call (its caller) is given away.
        bye = await ivr.send(9, {"flow_result_type": "3", "input": "hangup"})
        assert bye["outaction"] == 10
        assert bye["outparams"]["call_sor_id"] == ""
        snapshot = await _snapshot(served, "call-auth")
        assert (snapshot.call.turn_count, snapshot.call.dialogue_over) == (1, False)

        ivr.token = await _token(client)
        assert (await ivr.send(9, {"flow_result_type": "2", "input": "1"}))["outaction"] == 9


async def test_static_tokens_and_issuing_not_configured() -> None:
    env = {"HUAWEI_ODFS_AUTH_TOKENS": "ivr-a, ivr-b"}
    async with (
        serve() as served,
        serve_huawei(f"127.0.0.1:{served.running.port}", env) as client,
    ):
        assert (await Ivr(client, "call-static", "ivr-b").send(8, {}))["outaction"] == 9
        refused = await Ivr(client, "call-static", "ivr-c").post(
            Ivr(client, "call-static", "ivr-c").body(9, {"input": "1"})
        )
        assert (refused.status_code, refused.json()["ret"]) == (401, 900002)
        issuing = await client.post(TOKEN, json={"appKey": "tenant-1", "appSecret": "s3cret"})
        assert issuing.status_code == 403
        assert issuing.json()["errorCode"] == 900002


# -- bad input, V2, string codes ----------------------------------------------------------------------


async def test_bad_input_gets_a_clean_400_and_stores_nothing() -> None:
    async with serve() as served, serve_huawei(f"127.0.0.1:{served.running.port}") as client:
        json_type = {"content-type": "application/json"}
        replies = [
            await client.post(PROCESS, content=b'{"userid": "bad-1", ', headers=json_type),
            await client.post(PROCESS, data={"userid": "bad-1", "inaction": "8"}),
            await client.post(PROCESS, content=b"userid=bad-1"),
            await client.post(PROCESS, json=[{"userid": "bad-1"}]),
            await client.post(PROCESS, json={"userid": "bad-1", "inaction": 8}),
            await client.post(PROCESS, json={"userid": "bad-1", "inaction": "x", "inparams": {}}),
            await client.post(PROCESS, json={"userid": "bad-1", "inaction": 7, "inparams": {}}),
            await client.post(PROCESS, json={"inaction": 8, "inparams": {}}),
        ]
        for reply in replies:
            assert reply.status_code == 400, reply.text
            body = reply.json()
            assert set(body) == {"ret", "userid", "errorMsg"}
            assert body["ret"] == -1
            assert body["errorMsg"]
        assert replies[-2].json()["userid"] == "bad-1"
        await _not_stored(served, "bad-1")


async def test_the_v2_path_and_string_codes() -> None:
    env = {"HUAWEI_ODFS_STRING_CODES": "true"}
    async with serve() as served, serve_huawei(f"127.0.0.1:{served.running.port}", env) as client:
        ivr = Ivr(client, "call-v2", path="/oifde/rest/v2/crs/process/152")
        reply = await ivr.post(ivr.body(8, {"call_sor_id": "13800138000"}))
        assert reply.status_code == 200
        answer = reply.json()
        assert (answer["ret"], answer["outaction"]) == ("0", "9")
        # Huawei's own examples send strings: accepted on the way in too.
        body = ivr.body(9, {"flow_result_type": "2", "input": "2", "inter_idx": "1"})
        body["inaction"] = "9"
        assert (await ivr.post(body)).json()["outaction"] == "9"
        snapshot = await _snapshot(served, "call-v2")
        assert snapshot.turns[0].request.call.tenant == "152"
        assert snapshot.turns[0].request.call.platform == pb.PLATFORM_HUAWEI_CEC
        assert json.loads(reply.content)["outparams"]["inter_idx"] == "1"
