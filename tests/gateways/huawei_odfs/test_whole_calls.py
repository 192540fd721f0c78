"""Whole Huawei calls over HTTP against a small real grpc.aio server that answers from a script.

The demo flows do not emit every action yet (QueryQueue, HandToAssistant, every announcement
followed by every IVR signal), so a servicer of our own answers scripted decisions: a real
gRPC server on 127.0.0.1, the real gateway and decider in front of it. Every answer is checked
against the document's invariants (`check_answer`), and each test says what must follow.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any

import grpc
import httpx
import pytest

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc as pb_grpc
from gateways.app import create_app
from gateways.decider import Decider
from gateways.huawei_odfs import inbound, routes
from gateways.huawei_odfs.settings import Settings
from tests.gateways.huawei_odfs.test_outbound import check_answer
from tests.support.gateway import TEST_FALLBACK, serve_app

Script = Callable[[pb.DecideNextActionRequest, int], pb.DecideNextActionResponse]
CALL = "1528780879-9581"
PATHS = [routes.PROCESS_PATH, routes.PROCESS_V2_PATH.replace("{vdn_id}", "152")]


class ScriptedServer(pb_grpc.DialogueServiceServicer):
    """Answers DecideNextAction from a script; a repeated request id gets the stored answer.

    Attributes:
        requests: Every distinct request, in arrival order.
        down: While True every call fails UNAVAILABLE (the gateway answers its fallback).
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[pb.DecideNextActionRequest] = []
        self.answers: dict[str, pb.DecideNextActionResponse] = {}
        self.down = False

    async def DecideNextAction(  # noqa: N802 - the generated servicer's name
        self, request: pb.DecideNextActionRequest, context: grpc.aio.ServicerContext
    ) -> pb.DecideNextActionResponse:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down for the test")
        stored = self.answers.get(request.request_id)
        if stored is not None:
            return stored
        self.requests.append(request)
        answer = self.script(request, len(self.requests) - 1)
        self.answers[request.request_id] = answer
        return answer

    async def GetCall(  # noqa: N802 - the generated servicer's name
        self, request: pb.GetCallRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetCallResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted")
        raise AssertionError("abort raises")

    def events(self) -> list[str]:
        return [str(request.WhichOneof("event")) for request in self.requests]


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def scripted_call(
    script: Script, env: Mapping[str, str] | None = None, clock: Clock | None = None
) -> AsyncIterator[tuple[ScriptedServer, httpx.AsyncClient]]:
    """The scripted server and the gateway in front of it; yields both."""
    servicer = ScriptedServer(script)
    server = grpc.aio.server()
    pb_grpc.add_DialogueServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    decider = Decider(f"127.0.0.1:{port}", 10.0, TEST_FALLBACK)
    try:
        router = routes.build_router(decider, env or {}, clock=clock or Clock())
        async with serve_app(create_app("huawei-odfs", decider, router)) as client:
            yield servicer, client
    finally:
        await decider.close()
        await server.stop(None)


class Ivr:
    """The IVR's side of one call: echoes inter_idx (unless told not to), checks every answer."""

    def __init__(
        self, client: httpx.AsyncClient, path: str = routes.PROCESS_PATH, *, echo: bool = True
    ) -> None:
        self.client = client
        self.path = path
        self.echo = echo
        self.inter_idx = ""

    def body(
        self, inaction: int, inparams: Mapping[str, str], extparams: Mapping[str, str] | None
    ) -> dict[str, Any]:
        params = {"call_id": CALL, **inparams}
        if self.echo and self.inter_idx and inaction != 8:
            params.setdefault("inter_idx", self.inter_idx)
        return {
            "userid": CALL,
            "inaction": inaction,
            "inparams": params,
            "extparams": extparams or {},
        }

    async def send(
        self,
        inaction: int,
        inparams: Mapping[str, str],
        extparams: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        body = self.body(inaction, inparams, extparams)
        reply = await self.client.post(self.path, json=body)
        assert reply.status_code == 200, reply.text
        answer: dict[str, Any] = reply.json()
        check_answer(answer, inbound.parse_request(body), Settings())
        self.inter_idx = answer["outparams"].get("inter_idx", self.inter_idx)
        return answer

    async def start(self) -> dict[str, Any]:
        return await self.send(8, {"call_sor_id": "13500000001", "call_dst_id": "10086"})


def _tts(text: str, language: str = "zh-CN") -> pb.Prompts:
    prompts = pb.Prompts(barge_in=pb.BargeIn(mode=pb.BARGE_IN_MODE_NONE))
    prompts.items.add().tts.CopyFrom(pb.TextToSpeech(text=text, language=language))
    return prompts


QUEUE = pb.Transfer(skill_queue=pb.SkillQueue(access_code="10086001"))
MENU = pb.DecideNextActionResponse(
    play_and_listen=pb.PlayAndListen(
        prompts=_tts("请按1或说话费。"),
        digits=pb.DigitCollection(max_digits=1),
        speech=pb.SpeechRecognition(no_input_timeout_ms=5000),
    )
)
KEEP_PLAYING = pb.DecideNextActionResponse(keep_playing=pb.KeepPlaying())
END = pb.DecideNextActionResponse(end_dialogue=pb.EndDialogue(), dialogue_over=True)

# One decision of every kind, each as the flow's second step (after call_started).
ACTIONS: dict[str, pb.DecideNextActionResponse] = {
    "listen": MENU,
    "listen_without_prompts": pb.DecideNextActionResponse(
        play_and_listen=pb.PlayAndListen(digits=pb.DigitCollection(max_digits=4))
    ),
    "play": pb.DecideNextActionResponse(play=pb.Play(prompts=_tts("您的话费余额为10元。"))),
    "announce_then_transfer": pb.DecideNextActionResponse(
        play_and_transfer=pb.PlayAndTransfer(prompts=_tts("正在为您转接。"), transfer=QUEUE)
    ),
    "transfer": pb.DecideNextActionResponse(play_and_transfer=pb.PlayAndTransfer(transfer=QUEUE)),
    "goodbye_then_hang_up": pb.DecideNextActionResponse(
        play_and_hang_up=pb.PlayAndHangUp(prompts=_tts("再见。")), dialogue_over=True
    ),
    "record_with_instruction": pb.DecideNextActionResponse(
        record=pb.Record(prompts=_tts("请在提示音后留言。"), max_duration_ms=30000, beep=True)
    ),
    "record": pb.DecideNextActionResponse(record=pb.Record(max_duration_ms=30000)),
    "keep_playing": KEEP_PLAYING,
    "stop_playing": pb.DecideNextActionResponse(stop_playing=pb.StopPlaying()),
    "wait": pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=3000)),
    "ai_gather": pb.DecideNextActionResponse(ai_gather=pb.AiGather(greeting="请问去哪里？")),
    "end_dialogue": END,
    "query_queue": pb.DecideNextActionResponse(query_queue=pb.QueryQueue(skill_queue="10086001")),
    "hand_to_assistant": pb.DecideNextActionResponse(
        hand_to_assistant=pb.HandToAssistant(assistant_id="a-1", greeting="How can I help?")
    ),
    "nothing": pb.DecideNextActionResponse(),
}
SIGNALS = {
    "playover": {"flow_result_type": "3", "input": "playover"},
    "sys_err": {"flow_result_type": "-1", "input": "sys_err"},
    "nomatch": {"flow_result_type": "1", "input": "nomatch"},
    "timeout": {"flow_result_type": "2", "input": "timeout"},
    "speech": {"flow_result_type": "1", "input": "话费"},
    "hangup": {"flow_result_type": "3", "input": "hangup"},
}


def _first_then(action: pb.DecideNextActionResponse) -> Script:
    """call_started → action; any later event → KeepPlaying (nothing new to do)."""

    def script(request: pb.DecideNextActionRequest, index: int) -> pb.DecideNextActionResponse:
        return action if index == 0 else KEEP_PLAYING

    return script


@pytest.mark.parametrize("signal", sorted(SIGNALS))
@pytest.mark.parametrize("action", sorted(ACTIONS))
async def test_every_action_then_every_signal_keeps_the_invariants(
    action: str, signal: str
) -> None:
    """Every answer in format and playing something real; what was promised follows."""
    async with scripted_call(_first_then(ACTIONS[action])) as (server, client):
        ivr = Ivr(client)
        first = await ivr.start()
        after = await ivr.send(9, SIGNALS[signal])
    events = server.events()
    assert events[0] == "call_started"
    assert all(r.call.capabilities == [pb.CAPABILITY_QUEUE_STATUS] for r in server.requests)
    if signal == "hangup":
        assert after["outaction"] == 10
        assert events[-1] == "call_ended"
        return
    if action in ("announce_then_transfer",):
        assert first["outaction"] == 9
        assert after["outaction"] == 11  # the promise kept, whatever the IVR reported
    elif action == "goodbye_then_hang_up":
        assert (first["outaction"], after["outaction"]) == (9, 10)
    elif action == "record_with_instruction":
        assert first["outparams"]["prompt_type"] == "2"
        assert "留言" in first["outparams"]["prompt_text"]
        assert after["outparams"]["prompt_type"] == "4"
    elif action == "query_queue":
        assert first["outaction"] == 12
        assert events[-1] == "queue_status_reported"
    elif action == "hand_to_assistant":
        assert first["outparams"]["prompt_text"] == "How can I help?"
        assert events[-1] == "assistant_finished"
    elif action in ("transfer",):
        assert first["outaction"] == 11
    elif action == "end_dialogue":
        assert first["outaction"] == 10
    else:
        # KeepPlaying after an unexpected event: the filler plays, the caller may speak.
        assert after["outaction"] == 9
        assert after["outparams"]["prompt_wav"] == "silence.wav"


@pytest.mark.parametrize("answer_inaction", [9, 12])
@pytest.mark.parametrize("path", PATHS, ids=["v1", "v2"])
async def test_queue_status_then_announcement_then_transfer(
    path: str, answer_inaction: int
) -> None:
    """query_queue → outaction 12 → the figures come back → the announcement → outaction 11."""

    def script(request: pb.DecideNextActionRequest, index: int) -> pb.DecideNextActionResponse:
        event = request.WhichOneof("event")
        if event == "call_started":
            return pb.DecideNextActionResponse(
                query_queue=pb.QueryQueue(current_queue=pb.CurrentQueue())
            )
        if event == "queue_status_reported":
            status = request.queue_status
            text = (
                f"您前面还有{status.position}位，预计等待{status.estimated_wait_ms // 60000}分钟。"
            )
            return pb.DecideNextActionResponse(
                play_and_transfer=pb.PlayAndTransfer(prompts=_tts(text), transfer=QUEUE)
            )
        if event == "transfer_finished":
            return END
        # What the engine's transfer step answers to an announcement's playover.
        return pb.DecideNextActionResponse(play_and_transfer=pb.PlayAndTransfer(transfer=QUEUE))

    figures = {"queueIndex": "3", "agentCount": "5", "idleAgentCount": "0", "estimateTime": "120"}
    async with scripted_call(script) as (server, client):
        ivr = Ivr(client, path)
        query = await ivr.start()
        assert query["outaction"] == 12
        assert query["outparams"]["prompt_type"] == "1"
        assert query["outparams"]["moduleName"] == "QueryQueue"
        # Whatever the IVR reports after the query (here: a playover, or inaction 12).
        announcement = await ivr.send(
            answer_inaction, {"flow_result_type": "3", "input": "playover"}, figures
        )
        assert announcement["outaction"] == 9
        assert announcement["outparams"]["prompt_text"] == "您前面还有3位，预计等待2分钟。"
        transfer = await ivr.send(9, {"flow_result_type": "3", "input": "playover"})
        assert transfer["outaction"] == 11
        assert transfer["outparams"]["route_value"] == "10086001"
        done = await ivr.send(11, {"trans_result": "0"})
        assert done["outaction"] == 10
    reported = server.requests[1]
    assert reported.WhichOneof("event") == "queue_status_reported"
    assert reported.queue_status == pb.QueueStatus(
        position=3, agents_online=5, agents_idle=0, estimated_wait_ms=120_000
    )
    assert all(r.call.capabilities == [pb.CAPABILITY_QUEUE_STATUS] for r in server.requests)
    assert server.requests[0].call.tenant == ("152" if "v2" in path else "")


async def test_sys_err_on_a_transfer_announcement_still_transfers() -> None:
    """The engine answers sys_err at a transfer with KeepPlaying: the transfer is re-issued."""
    action = ACTIONS["announce_then_transfer"]
    async with scripted_call(_first_then(action)) as (server, client):
        ivr = Ivr(client)
        await ivr.start()
        retried_body = ivr.body(9, SIGNALS["sys_err"], None)
        transfer = await ivr.send(9, SIGNALS["sys_err"])
        # A network retry of the same request gets the identical answer.
        again = (await client.post(routes.PROCESS_PATH, json=retried_body)).json()
    assert transfer["outaction"] == 11
    assert again == transfer
    assert server.events() == ["call_started", "platform_error"]


async def test_two_real_interactions_without_inter_idx_are_two_turns_a_retry_is_one() -> None:
    """Only the mandatory fields: two key-1 answers at two questions are two turns."""
    questions = ["第一题：满意请按1。", "第二题：满意请按1。", "谢谢。"]

    def script(request: pb.DecideNextActionRequest, index: int) -> pb.DecideNextActionResponse:
        return pb.DecideNextActionResponse(
            play_and_listen=pb.PlayAndListen(
                prompts=_tts(questions[min(index, 2)]), digits=pb.DigitCollection(max_digits=1)
            )
        )

    clock = Clock()
    async with scripted_call(script, clock=clock) as (server, client):
        ivr = Ivr(client, echo=False)
        await ivr.start()
        key = {"call_dst_id": "10086", "flow_result_type": "2", "input": "1"}
        first = await ivr.send(9, key)
        clock.now += 0.5  # a network retry, within HUAWEI_ODFS_RETRY_WINDOW_MS
        retry = await ivr.send(9, key)
        clock.now += 8  # the caller heard question two, then pressed 1 again
        second = await ivr.send(9, key)
    assert retry == first
    assert "第二题" in first["outparams"]["prompt_text"]
    assert "谢谢" in second["outparams"]["prompt_text"]
    assert server.events() == ["call_started", "digits_entered", "digits_entered"]
    assert len({r.request_id for r in server.requests}) == 3


async def test_the_fallbacks_promise_is_kept_after_the_server_recovers() -> None:
    """Server down at the start → "transferring you"; server back → the transfer, not the menu."""
    async with scripted_call(lambda request, index: MENU) as (server, client):
        ivr = Ivr(client)
        server.down = True
        rescue = await ivr.start()
        server.down = False
        after = await ivr.send(9, SIGNALS["playover"])
    assert "系统繁忙" in rescue["outparams"]["prompt_text"]
    assert after["outaction"] == 11
    assert after["outparams"]["route_value"] == "9999"


async def test_a_failed_transfer_then_goodbye_hangs_up_as_failed_with_the_call_facts() -> None:
    """release_reason 1 after a failed transfer; call_dst_id remembered; one clock for times."""

    def script(request: pb.DecideNextActionRequest, index: int) -> pb.DecideNextActionResponse:
        if index == 0:
            return ACTIONS["transfer"]
        if index == 1:
            return ACTIONS["goodbye_then_hang_up"]
        return END

    clock = Clock()
    started = clock.now
    async with scripted_call(script, clock=clock) as (_, client):
        ivr = Ivr(client)
        await ivr.start()
        clock.now += 30
        goodbye = await ivr.send(11, {"trans_result": "1", "end_trans": "2018090407:16:55"})
        clock.now += 5
        hang_up = await ivr.send(9, {"flow_result_type": "3", "input": "playover"})
    assert goodbye["outaction"] == 9
    params = hang_up["outparams"]
    assert hang_up["outaction"] == 10
    assert params["release_reason"] == "1"
    assert params["call_dst_id"] == "10086"
    assert params["call_sor_id"] == "13500000001"

    def stamp(seconds: float) -> str:
        return datetime.fromtimestamp(seconds).strftime(routes.TIME_FORMAT)

    assert (params["start_time"], params["end_time"]) == (stamp(started), stamp(started + 35))


async def test_the_flows_collected_data_reaches_the_agent() -> None:
    transfer = pb.Transfer(skill_queue=pb.SkillQueue(access_code="10086001"))
    transfer.associated_data["phone"] = "13800138000"
    decision = pb.DecideNextActionResponse(play_and_transfer=pb.PlayAndTransfer(transfer=transfer))
    decision.call_data.passthrough = "95,22714"
    async with scripted_call(_first_then(decision)) as (_, client):
        answer = await Ivr(client).start()
    assert json.loads(answer["outparams"]["trans_data"]) == {
        "phone": "13800138000",
        "transin_data": "95,22714",
    }


async def test_a_late_retry_of_an_earlier_request_neither_takes_nor_breaks_a_promise() -> None:
    """menu → key 1 → goodbye announcement; a late retry of key 1 gets its own answer again."""

    def script(request: pb.DecideNextActionRequest, index: int) -> pb.DecideNextActionResponse:
        return [MENU, MENU, ACTIONS["goodbye_then_hang_up"]][min(index, 2)]

    async with scripted_call(script) as (_, client):
        ivr = Ivr(client)
        await ivr.start()
        key_body = ivr.body(9, {"flow_result_type": "2", "input": "1"}, None)
        first = await ivr.send(9, {"flow_result_type": "2", "input": "1"})
        goodbye = await ivr.send(9, {"flow_result_type": "2", "input": "2"})
        late = (await client.post(routes.PROCESS_PATH, json=key_body)).json()
        hang_up = await ivr.send(9, SIGNALS["playover"])
    assert late == first
    assert goodbye["outaction"] == 9
    assert hang_up["outaction"] == 10


async def test_a_reordered_retry_without_inter_idx_is_still_a_retry() -> None:
    def script(request: pb.DecideNextActionRequest, index: int) -> pb.DecideNextActionResponse:
        return MENU

    clock = Clock()
    async with scripted_call(script, clock=clock) as (server, client):
        ivr = Ivr(client, echo=False)
        await ivr.start()
        one = {"call_dst_id": "10086", "flow_result_type": "2", "input": "1"}
        two = {"call_dst_id": "10086", "flow_result_type": "2", "input": "2"}
        first = await ivr.send(9, one)
        await ivr.send(9, two)
        clock.now += 1  # the retry of the first arrives after the second, within the window
        again = await ivr.send(9, one)
    assert again == first
    assert server.events() == ["call_started", "digits_entered", "digits_entered"]
