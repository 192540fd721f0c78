"""Meta-test: every action the contract can express is rendered by every gateway.

Adding an action to the proto fails this test until each gateway renders it (natively or by a
documented degradation); adding a gateway fails it until the gateway is listed here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from gateways.aliyun_ccc import inbound as ccc
from gateways.aliyun_ccc import outbound as ccc_out
from gateways.aliyun_ivr import inbound as ivr
from gateways.aliyun_ivr import outbound as ivr_out
from gateways.huawei_odfs import inbound as huawei_inbound
from gateways.huawei_odfs import outbound as huawei_outbound
from gateways.huawei_odfs import settings as huawei_settings
from gateways.telnyx import outbound as telnyx_outbound
from gateways.telnyx import settings as telnyx_settings
from gateways.vendors import VENDORS
from tests.gateways.telnyx.spec import command_problems

DOCS = Path(__file__).resolve().parents[2] / "docs" / "gateways"
ACTIONS = [
    field.name for field in pb.DecideNextActionResponse.DESCRIPTOR.oneofs_by_name["action"].fields
]


def _prompts() -> pb.Prompts:
    prompts = pb.Prompts(barge_in=pb.BargeIn(mode=pb.BARGE_IN_MODE_SPEECH, min_speech_ms=300))
    prompts.items.add().tts.CopyFrom(pb.TextToSpeech(text="您好：余额为¥10{元}", language="zh-CN"))
    prompts.items.add().audio.media_name = "welcome.wav"
    return prompts


def _sample(action: str) -> pb.DecideNextActionResponse:
    """A representative decision for each action, with the fields a flow would set."""
    transfer = pb.Transfer(
        skill_queue=pb.SkillQueue(access_code="10086001"), mode=pb.TRANSFER_MODE_BLIND
    )
    samples: dict[str, pb.DecideNextActionResponse] = {
        "play_and_listen": pb.DecideNextActionResponse(
            play_and_listen=pb.PlayAndListen(
                prompts=_prompts(),
                digits=pb.DigitCollection(
                    min_digits=1, max_digits=11, terminator="#", first_digit_timeout_ms=5000
                ),
                speech=pb.SpeechRecognition(language="zh-CN", no_input_timeout_ms=5000),
            )
        ),
        "play_and_transfer": pb.DecideNextActionResponse(
            play_and_transfer=pb.PlayAndTransfer(prompts=_prompts(), transfer=transfer)
        ),
        "play_and_hang_up": pb.DecideNextActionResponse(
            play_and_hang_up=pb.PlayAndHangUp(
                prompts=_prompts(), reason=pb.HANG_UP_REASON_COMPLETED
            ),
            dialogue_over=True,
        ),
        "play": pb.DecideNextActionResponse(play=pb.Play(prompts=_prompts())),
        "record": pb.DecideNextActionResponse(
            record=pb.Record(prompts=_prompts(), max_duration_ms=60000, beep=True)
        ),
        "keep_playing": pb.DecideNextActionResponse(keep_playing=pb.KeepPlaying()),
        "stop_playing": pb.DecideNextActionResponse(stop_playing=pb.StopPlaying()),
        "wait": pb.DecideNextActionResponse(wait=pb.Wait(duration_ms=3000)),
        "ai_gather": pb.DecideNextActionResponse(
            ai_gather=pb.AiGather(greeting="请问您要去哪个城市？", language="zh-CN")
        ),
        "end_dialogue": pb.DecideNextActionResponse(
            end_dialogue=pb.EndDialogue(), dialogue_over=True
        ),
        "query_queue": pb.DecideNextActionResponse(
            query_queue=pb.QueryQueue(current_queue=pb.CurrentQueue())
        ),
        "hand_to_assistant": pb.DecideNextActionResponse(
            hand_to_assistant=pb.HandToAssistant(
                assistant_id="assistant-2a9c", greeting="How can I help?", context={"phone": "1"}
            )
        ),
    }
    response = samples[action]
    response.call_data.continuation_token = "main_menu-3"
    return response


_IVR_VERBS = {
    "play", "break", "continue", "hangup", "transfer", "donothing", "dtmf", "parallel_transfer", "parallel_bridge",
}  # fmt: skip
_FORBIDDEN = set('@=:"${}^*¥')


def _render_ivr(response: pb.DecideNextActionResponse) -> None:
    for content_type, verbs in (("normal", _IVR_VERBS), ("callin", {"answer", "hangup"})):
        callback = ivr.Callback(
            call_id="100001616500^100001871490",
            timestamp=1504174341229,
            content_type=content_type,
            content={},
        )
        answer = ivr_out.render_answer(callback, response, ivr_out.AnswerSettings())
        assert answer["result"] == "success"
        data = answer["data"]
        assert data["action"] in verbs
        params = json.loads(data.get("action_code_param") or "{}")
        for text in [*params.values(), data.get("dynamic_id", "")]:
            assert not _FORBIDDEN & set(text), text
        if "mute_time" in data:
            assert 1000 <= data["mute_time"] <= 20000


def _render_ccc(response: pb.DecideNextActionResponse) -> None:
    for response_format in ("JSON", "XML"):
        call = ccc.DialogueCall(
            instance_id="i", call_id="c", call_type="Outbound", calling_number="10086", called_number="13800138000",
            utterance="", scenario_id="", task_id="", script_id="", action_key="broadcast", response_format=response_format,
        )  # fmt: skip
        status, _, body = ccc_out.render_answer(
            call, response, "254EB995-DEDF-48A4-9101-9CA5B72FFBCC"
        )
        assert status == 200
        if response_format == "JSON":
            action = json.loads(body)["Feedback"]["Action"]
        else:
            action = ElementTree.fromstring(body.encode()).findtext("Feedback/Action")
        assert action in ("broadcast", "Hangup")


def _render_huawei(response: pb.DecideNextActionResponse) -> None:
    for inaction, inparams in (
        (8, {"call_id": "1528780879-9581", "call_sor_id": "13500000001", "call_dst_id": "10086"}),
        (
            9,
            {
                "call_id": "1528780879-9581",
                "call_dst_id": "10086",
                "flow_result_type": "1",
                "input": "话费",
            },
        ),
    ):
        body = {"userid": "1528780879-9581", "inaction": inaction, "inparams": inparams}
        answer = huawei_outbound.render_answer(
            huawei_inbound.parse_request(body), response, huawei_settings.Settings()
        )
        assert answer["ret"] == 0
        assert answer["outaction"] in (9, 10, 11, 12)
        assert all(isinstance(value, str) for value in answer["outparams"].values())
        if answer["outaction"] == 9 and answer["outparams"]["prompt_type"] == "2":
            assert answer["outparams"]["prompt_text"].strip()


def _render_telnyx(response: pb.DecideNextActionResponse) -> None:
    context = telnyx_outbound.CommandContext(
        event_id="0ccc7b54-4df3-4bca-a65a-3da1ecc777f0",
        call_control_id="v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg",
        settings=telnyx_settings.Settings(transfer_targets={"skill_queue:10086001": "+8610086001"}),
    )
    for name, body in telnyx_outbound.plan_commands(response, context):
        assert name in telnyx_outbound.COMMANDS
        assert command_problems(name, body) == [], (name, body)


RENDERERS: dict[str, Callable[[pb.DecideNextActionResponse], None]] = {
    "aliyun-ivr": _render_ivr,
    "aliyun-ccc": _render_ccc,
    "huawei-odfs": _render_huawei,
    "telnyx": _render_telnyx,
}
_MESSAGE_NAMES = {
    field.name: field.message_type.name
    for field in pb.DecideNextActionResponse.DESCRIPTOR.oneofs_by_name["action"].fields
    if field.message_type is not None
}


def test_every_gateway_is_covered() -> None:
    assert set(RENDERERS) == set(VENDORS)


@pytest.mark.parametrize("vendor", sorted(RENDERERS))
@pytest.mark.parametrize("action", ACTIONS)
def test_every_action_renders_validly(vendor: str, action: str) -> None:
    RENDERERS[vendor](_sample(action))


@pytest.mark.parametrize("vendor", sorted(RENDERERS))
def test_every_action_is_documented_in_the_gateway_mapping(vendor: str) -> None:
    doc = (DOCS / f"{vendor}.md").read_text(encoding="utf-8")
    missing = [name for name in _MESSAGE_NAMES.values() if name not in doc]
    assert not missing, f"docs/gateways/{vendor}.md does not say how it renders {missing}"


@pytest.mark.parametrize("vendor", sorted(RENDERERS))
def test_an_empty_decision_renders_safely(vendor: str) -> None:
    RENDERERS[vendor](pb.DecideNextActionResponse())
