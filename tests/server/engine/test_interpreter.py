"""Unit tests of the pure step function `decide`: every node kind, escalation, commands, purity.

Most tests drive a tiny flow written inline as YAML; a few walk the demo flows end to end.
"""

from __future__ import annotations

import copy
import json
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.catalog import Catalog, load_catalog
from server.engine.flow import Flow
from server.engine.flowfile import parse_flow
from server.engine.interpreter import Decision, FlowRuntimeError, decide
from server.engine.state import FAILURES, NO_INPUT, NO_MATCH, CallState, decode, encode

CALL_ID = "call-1"
CALLER = "+8613800138000"
CALLEE = "10086"
FLOWS_DIR = Path(__file__).resolve().parents[3] / "flows"
HEADER = 'flow: t\nversion: "1"\nlanguage: zh-CN\nvoice: xiaoyun\n'


# -- helpers ----------------------------------------------------------------------------------


def make_flow(body: str) -> Flow:
    """Parses an inline flow: a fixed header (id t, version 1, zh-CN, voice xiaoyun) + body."""
    return parse_flow(HEADER + textwrap.dedent(body), "inline.yaml")


def make_request(
    event: str,
    payload: Message | None = None,
    *,
    parameters: dict[str, str] | None = None,
    passthrough: str = "",
    request_id: str = "req",
) -> pb.DecideNextActionRequest:
    """Builds a request for one event (the oneof field name) with an optional payload."""
    request = pb.DecideNextActionRequest(
        request_id=request_id,
        call=pb.Call(
            call_id=CALL_ID,
            platform=pb.PLATFORM_OTHER,
            direction=pb.CALL_DIRECTION_INBOUND,
            caller=CALLER,
            callee=CALLEE,
        ),
        call_data=pb.CallData(parameters=parameters or {}, passthrough=passthrough),
    )
    field = getattr(request, event)
    if payload is None:
        field.SetInParent()
    else:
        field.CopyFrom(payload)
    return request


def started(**kwargs: Any) -> pb.DecideNextActionRequest:
    return make_request("call_started", **kwargs)


def speech(text: str, **kwargs: Any) -> pb.DecideNextActionRequest:
    return make_request("speech_recognized", pb.SpeechRecognized(text=text), **kwargs)


def keys(digits: str, *, timed_out: bool = False) -> pb.DecideNextActionRequest:
    return make_request("digits_entered", pb.DigitsEntered(digits=digits, timed_out=timed_out))


def no_input() -> pb.DecideNextActionRequest:
    return make_request("no_input", pb.NoInput(waited_ms=5000))


def no_match() -> pb.DecideNextActionRequest:
    return make_request("no_match", pb.NoMatch(input="#", reason="invalid"))


def played() -> pb.DecideNextActionRequest:
    return make_request("playback_finished")


def barged_in(speech_ms: int) -> pb.DecideNextActionRequest:
    return make_request("barged_in", pb.BargedIn(speech_duration_ms=speech_ms))


def recorded(uri: str) -> pb.DecideNextActionRequest:
    return make_request(
        "recording_finished", pb.RecordingFinished(recording_uri=uri, duration_ms=4200)
    )


def transferred(
    outcome: pb.TransferOutcome.ValueType, reason: str = ""
) -> pb.DecideNextActionRequest:
    return make_request("transfer_finished", pb.TransferFinished(outcome=outcome, reason=reason))


def gathered(parameters: dict[str, Any], *, complete: bool) -> pb.DecideNextActionRequest:
    finished = pb.AiGatherFinished(complete=complete)
    finished.parameters.update(parameters)
    return make_request("ai_gather_finished", finished)


def ended(party: pb.HangUpParty.ValueType = pb.HANG_UP_PARTY_CALLER) -> pb.DecideNextActionRequest:
    return make_request("call_ended", pb.CallEnded(hung_up_by=party))


def platform_error() -> pb.DecideNextActionRequest:
    return make_request("platform_error", pb.PlatformError(code="503", message="asr down"))


def walk(
    flow: Flow | None, *requests: pb.DecideNextActionRequest, state: CallState | None = None
) -> list[Decision]:
    """Applies requests in order, threading each decision's state into the next turn."""
    decisions: list[Decision] = []
    for request in requests:
        decision = decide(flow, state, request)
        decisions.append(decision)
        state = decision.state
    return decisions


def last(flow: Flow | None, *requests: pb.DecideNextActionRequest) -> Decision:
    return walk(flow, *requests)[-1]


def action(decision: Decision) -> str:
    return decision.response.WhichOneof("action") or ""


def prompts_of(decision: Decision) -> pb.Prompts:
    response = decision.response
    kind = action(decision)
    if kind == "play_and_listen":
        return response.play_and_listen.prompts
    if kind == "play_and_transfer":
        return response.play_and_transfer.prompts
    if kind == "play_and_hang_up":
        return response.play_and_hang_up.prompts
    if kind == "play":
        return response.play.prompts
    if kind == "record":
        return response.record.prompts
    raise AssertionError(f"action {kind!r} carries no prompts")


def spoken(decision: Decision) -> list[str]:
    """What the action plays: TTS texts, media names or URLs, in order."""
    return [
        item.tts.text if item.HasField("tts") else item.audio.media_name or item.audio.url
        for item in prompts_of(decision).items
    ]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(FLOWS_DIR)


# -- say chains ---------------------------------------------------------------------------------

SAY_CHAINS = make_flow(
    """
    start: hello
    defaults: {on_max_attempts: bye}
    nodes:
      hello: {type: say, prompt: 你好, next: notice}
      notice: {type: say, prompt: 本次通话可能会被录音, next: ask}
      ask:
        type: menu
        prompt: 转账请按1，挂机请按2，稍候请按3
        choices:
          - {intent: move, key: "1", next: handover}
          - {intent: leave, key: "2", next: leaving}
          - {intent: hold, key: "3", next: hold_on}
      handover: {type: say, prompt: 马上为您转接, next: agent}
      agent: {type: transfer, prompt: 请稍候, target: {skill_queue: "100"}, on_failure: bye}
      leaving: {type: say, prompt: 感谢使用, next: bye}
      bye: {type: hangup, prompt: 再见}
      hold_on: {type: say, prompt: 请听以下公告, wait_for_playback: true, next: ask}
    """
)


def test_say_chain_is_carried_into_play_and_listen() -> None:
    decision = last(SAY_CHAINS, started())

    assert action(decision) == "play_and_listen"
    assert spoken(decision) == ["你好", "本次通话可能会被录音", "转账请按1，挂机请按2，稍候请按3"]
    assert decision.state.node == "ask"
    assert decision.state.entry == "hello"


def test_say_chain_is_carried_into_play_and_transfer() -> None:
    decision = last(SAY_CHAINS, started(), keys("1"))

    assert action(decision) == "play_and_transfer"
    assert spoken(decision) == ["马上为您转接", "请稍候"]
    assert decision.response.play_and_transfer.transfer.skill_queue.access_code == "100"
    assert decision.state.node == "agent"


def test_say_chain_is_carried_into_play_and_hang_up() -> None:
    decision = last(SAY_CHAINS, started(), keys("2"))

    assert action(decision) == "play_and_hang_up"
    assert spoken(decision) == ["感谢使用", "再见"]
    assert decision.response.dialogue_over is True
    assert decision.state.node == "bye"


def test_say_waiting_for_playback_plays_then_continues_on_playback_finished() -> None:
    waiting, resumed = walk(SAY_CHAINS, started(), keys("3"), played())[1:]

    assert action(waiting) == "play"
    assert spoken(waiting) == ["请听以下公告"]
    assert waiting.state.node == "hold_on"
    assert waiting.response.dialogue_over is False
    assert action(resumed) == "play_and_listen"
    assert spoken(resumed) == ["转账请按1，挂机请按2，稍候请按3"]
    assert resumed.state.node == "ask"


@pytest.mark.parametrize("event", [no_input(), platform_error()])
def test_say_waiting_for_playback_also_continues_on_silence_or_platform_error(
    event: pb.DecideNextActionRequest,
) -> None:
    decision = last(SAY_CHAINS, started(), keys("3"), event)

    assert action(decision) == "play_and_listen"
    assert decision.state.node == "ask"


def test_say_waiting_for_playback_keeps_playing_on_keys() -> None:
    before, decision = walk(SAY_CHAINS, started(), keys("3"), keys("1"))[1:]

    assert action(decision) == "keep_playing"
    assert decision.state.node == "hold_on"
    assert decision.state.turn == before.state.turn + 1


def test_prompt_items_render_audio_url_and_tts_with_flow_defaults_and_overrides() -> None:
    flow = make_flow(
        """
        start: ask
        defaults: {on_max_attempts: ask}
        nodes:
          ask:
            type: menu
            prompt:
              - audio: welcome_tone
              - url: https://media.example.com/notice.wav
              - 普通话提示
              - {tts: Press one, language: en-US, voice: Kate, speed: 1.2}
            choices: [{intent: a, key: "1", next: ask}]
        """
    )

    items = prompts_of(last(flow, started())).items

    assert items[0].audio.media_name == "welcome_tone"
    assert items[1].audio.url == "https://media.example.com/notice.wav"
    assert (items[2].tts.text, items[2].tts.language, items[2].tts.voice) == (
        "普通话提示",
        "zh-CN",
        "xiaoyun",
    )
    assert items[2].tts.template == ""
    assert (items[3].tts.text, items[3].tts.language, items[3].tts.voice) == (
        "Press one",
        "en-US",
        "Kate",
    )
    assert items[3].tts.speed == pytest.approx(1.2)


# -- menu -----------------------------------------------------------------------------------------

MENU = make_flow(
    """
    start: main
    defaults:
      on_max_attempts: bye
      no_input_timeout_ms: 4000
      inter_digit_timeout_ms: 2000
      no_match: [抱歉没听懂]
    commands:
      - {intent: agent, keywords: [人工], key: "0", goto: agent}
    nodes:
      main:
        type: menu
        prompt: 话费请按1，流量请按2
        choices:
          - {intent: bill, key: "1", keywords: [话费, 账单], next: bill}
          - {intent: bill_plan, key: "2", keywords: [话费套餐, 流量], next: plan}
          - {intent: balance, key: "3", keywords: [余额], next: balance}
      bill: {type: hangup, prompt: 话费}
      plan: {type: hangup, prompt: 套餐}
      balance: {type: hangup, prompt: 余额}
      agent: {type: transfer, prompt: 转人工, target: {skill_queue: "100"}, on_failure: bye}
      bye: {type: hangup, prompt: 再见}
    """
)


@pytest.mark.parametrize(
    ("request_", "node", "intent"),
    [
        (keys("1"), "bill", "bill"),
        (keys("2"), "plan", "bill_plan"),
        (speech("我想查一下账单"), "bill", "bill"),
        (speech("流量还剩多少"), "plan", "bill_plan"),
        (speech("一"), "bill", "bill"),
        (speech("二"), "plan", "bill_plan"),
        (speech("one"), "bill", "bill"),
        (speech("Two"), "plan", "bill_plan"),
        (speech("３"), "balance", "balance"),
    ],
)
def test_menu_chooses_by_key_keyword_or_spoken_digit(
    request_: pb.DecideNextActionRequest, node: str, intent: str
) -> None:
    decision = last(MENU, started(), request_)

    assert decision.state.node == node
    assert decision.response.diagnostics.matched_intent == intent
    assert action(decision) == "play_and_hang_up"


def test_menu_longest_keyword_wins_across_choices() -> None:
    # "话费" (bill) and "话费套餐" (bill_plan) both occur; the longer keyword decides.
    decision = last(MENU, started(), speech("我想换个话费套餐"))

    assert decision.state.node == "plan"
    assert decision.response.diagnostics.matched_intent == "bill_plan"


def test_menu_keyword_tie_goes_to_the_earlier_choice() -> None:
    # "余额" (balance, 3rd choice) is said first, "账单" (bill, 1st choice) second: same length.
    decision = last(MENU, started(), speech("余额和账单"))

    assert decision.state.node == "bill"
    assert decision.response.diagnostics.matched_intent == "bill"


@pytest.mark.parametrize(
    "request_", [speech("今天天气怎么样"), keys("9"), keys("12"), speech("九")]
)
def test_menu_input_matching_no_choice_is_a_no_match(request_: pb.DecideNextActionRequest) -> None:
    decision = last(MENU, started(), request_)

    assert action(decision) == "play_and_listen"
    assert spoken(decision) == ["抱歉没听懂", "话费请按1，流量请按2"]
    assert decision.state.node == "main"
    assert decision.state.count(NO_MATCH) == 1
    assert decision.response.diagnostics.matched_intent == ""
    assert "no-match 1 of 3 at main" in decision.response.diagnostics.note


def test_menu_listens_for_choice_and_command_keys_and_speech_with_hints() -> None:
    listen = last(MENU, started()).response.play_and_listen

    assert listen.digits == pb.DigitCollection(
        min_digits=1,
        max_digits=1,
        valid_keys="0123",
        first_digit_timeout_ms=4000,
        inter_digit_timeout_ms=2000,
    )
    assert listen.speech.language == "zh-CN"
    assert listen.speech.no_input_timeout_ms == 4000
    assert list(listen.speech.hints) == ["话费", "账单", "话费套餐", "流量", "余额"]


def test_menu_without_keys_or_speech_leaves_those_collections_out() -> None:
    flow = make_flow(
        """
        start: voice_only
        defaults: {on_max_attempts: keys_only}
        nodes:
          voice_only:
            type: menu
            prompt: 请说
            choices: [{intent: a, keywords: [好], next: keys_only}]
          keys_only:
            type: menu
            prompt: 请按
            speech: false
            choices: [{intent: b, key: "1", next: voice_only}]
        """
    )

    voice, pressed = walk(flow, started(), speech("好"))

    assert not voice.response.play_and_listen.HasField("digits")
    assert voice.response.play_and_listen.HasField("speech")
    assert pressed.state.node == "keys_only"
    assert pressed.response.play_and_listen.digits.valid_keys == "1"
    assert not pressed.response.play_and_listen.HasField("speech")


def test_menu_playback_finished_keeps_listening_without_prompts() -> None:
    decision = last(MENU, started(), played())

    assert action(decision) == "play_and_listen"
    assert list(decision.response.play_and_listen.prompts.items) == []
    assert decision.response.play_and_listen.digits.valid_keys == "0123"
    assert decision.state.node == "main"
    assert decision.state.count(NO_MATCH) == 0


def test_menu_prompts_again_on_an_event_that_does_not_apply_to_it() -> None:
    decision = last(MENU, started(), recorded("https://rec/1.wav"))

    assert action(decision) == "play_and_listen"
    assert spoken(decision) == ["话费请按1，流量请按2"]
    assert decision.state.node == "main"
    assert decision.state.slots == {}


# -- collect --------------------------------------------------------------------------------------

COLLECT = make_flow(
    """
    start: phone
    defaults:
      on_max_attempts: bye
      no_match: [默认没听懂]
    nodes:
      phone:
        type: collect
        slot: phone
        slot_type: digits
        min_length: 11
        max_length: 11
        pattern: "1[3-9][0-9]{9}"
        prompt: 请输入手机号
        invalid: [号码无效]
        next: confirm
      confirm: {type: say, prompt: "您的号码是{phone}", next: amount}
      amount: {type: collect, slot: amount, slot_type: number, prompt: 请说金额, next: agree}
      agree: {type: collect, slot: agree, slot_type: yes_no, prompt: 同意吗, next: name}
      name: {type: collect, slot: name, slot_type: text, prompt: 请说姓名, next: bye}
      bye: {type: hangup, prompt: "再见{name}"}
    """
)


@pytest.mark.parametrize(
    "request_",
    [keys("13800138000"), speech("幺三八 零零一三 八零零零"), speech("138-0013-8000")],
)
def test_collect_digits_stores_slot_and_renders_it_into_next_prompt(
    request_: pb.DecideNextActionRequest,
) -> None:
    decision = last(COLLECT, started(), request_)

    assert decision.state.slots == {"phone": "13800138000"}
    assert decision.state.node == "amount"
    assert decision.response.diagnostics.matched_intent == "phone"
    confirm = prompts_of(decision).items[0].tts
    assert confirm.text == "您的号码是13800138000"
    assert confirm.template == "您的号码是{phone}"
    assert dict(confirm.template_values) == {"phone": "13800138000"}
    assert spoken(decision)[1] == "请说金额"


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        (keys("1380013800"), "10 digits, expected 11-11"),
        (keys("23800138000"), "does not match"),
        (speech("我不知道"), "is not digits"),
    ],
)
def test_collect_digits_invalid_input_plays_the_invalid_reprompt(
    request_: pb.DecideNextActionRequest, problem: str
) -> None:
    decision = last(COLLECT, started(), request_)

    assert action(decision) == "play_and_listen"
    assert spoken(decision) == ["号码无效", "请输入手机号"]
    assert decision.state.node == "phone"
    assert decision.state.slots == {}
    assert decision.state.count(NO_MATCH) == 1
    assert problem in decision.response.diagnostics.note


def test_collect_without_invalid_reprompts_uses_no_match_reprompts() -> None:
    decision = last(COLLECT, started(), keys("13800138000"), speech("很多钱"))

    assert spoken(decision) == ["默认没听懂", "请说金额"]
    assert decision.state.node == "amount"


def test_collect_digits_listens_for_its_length_and_terminator() -> None:
    listen = last(COLLECT, started()).response.play_and_listen

    assert listen.digits.min_digits == 11
    assert listen.digits.max_digits == 11
    assert listen.digits.terminator == "#"
    assert listen.digits.valid_keys == "0123456789#"
    assert listen.HasField("speech")


@pytest.mark.parametrize(
    ("request_", "value"),
    [(speech("两百五十"), "250"), (keys("42"), "42"), (speech("一万零五"), "10005")],
)
def test_collect_number_stores_parsed_value(
    request_: pb.DecideNextActionRequest, value: str
) -> None:
    decision = last(COLLECT, started(), keys("13800138000"), request_)

    assert decision.state.slots["amount"] == value
    assert decision.state.node == "agree"


@pytest.mark.parametrize(
    ("request_", "value"),
    [
        (keys("1"), "yes"),
        (keys("2"), "no"),
        (speech("是的"), "yes"),
        (speech("可以"), "yes"),
        (speech("yeah"), "yes"),
        (speech("不是"), "no"),
        (speech("不用了"), "no"),
        (speech("nope"), "no"),
    ],
)
def test_collect_yes_no_accepts_keys_one_two_and_words(
    request_: pb.DecideNextActionRequest, value: str
) -> None:
    decision = last(COLLECT, started(), keys("13800138000"), keys("5"), request_)

    assert decision.state.slots["agree"] == value
    assert decision.state.node == "name"


@pytest.mark.parametrize("request_", [keys("3"), speech("今天星期几")])
def test_collect_yes_no_rejects_other_answers(request_: pb.DecideNextActionRequest) -> None:
    decision = last(COLLECT, started(), keys("13800138000"), keys("5"), request_)

    assert decision.state.node == "agree"
    assert "agree" not in decision.state.slots
    assert spoken(decision) == ["默认没听懂", "同意吗"]


def test_collect_yes_no_listens_for_one_key_of_one_or_two() -> None:
    decision = last(COLLECT, started(), keys("13800138000"), keys("5"))

    digits = decision.response.play_and_listen.digits
    assert (digits.min_digits, digits.max_digits, digits.valid_keys) == (1, 1, "12")


def test_collect_text_stores_the_transcript_and_listens_for_speech_only() -> None:
    at_name, done = walk(
        COLLECT, started(), keys("13800138000"), keys("5"), keys("1"), speech(" 张三 ")
    )[-2:]

    assert not at_name.response.play_and_listen.HasField("digits")
    assert at_name.response.play_and_listen.HasField("speech")
    assert done.state.slots == {
        "phone": "13800138000",
        "amount": "5",
        "agree": "yes",
        "name": "张三",
    }
    assert action(done) == "play_and_hang_up"
    assert spoken(done) == ["再见张三"]


# -- branch ---------------------------------------------------------------------------------------


def _branch_flow(condition: str) -> Flow:
    return make_flow(
        f"""
        start: check
        defaults: {{on_max_attempts: other}}
        nodes:
          check:
            type: branch
            cases:
              - when: {condition}
                next: matched
            default: other
          matched: {{type: hangup, prompt: 命中}}
          other: {{type: hangup, prompt: 默认}}
        """
    )


@pytest.mark.parametrize(
    ("condition", "parameters", "node"),
    [
        ("{params.tier: gold}", {"tier": "gold"}, "matched"),
        ("{params.tier: {equals: gold}}", {"tier": "gold"}, "matched"),
        ("{params.tier: {equals: gold}}", {"tier": "silver"}, "other"),
        ("{params.tier: {equals: gold}}", {}, "other"),
        ("{params.tier: {not_equals: gold}}", {"tier": "silver"}, "matched"),
        ("{params.tier: {not_equals: gold}}", {"tier": "gold"}, "other"),
        ("{params.tier: {not_equals: gold}}", {}, "matched"),
        ("{params.tier: {one_of: [gold, platinum]}}", {"tier": "platinum"}, "matched"),
        ("{params.tier: {one_of: [gold, platinum]}}", {"tier": "silver"}, "other"),
        ("{params.tier: {present: true}}", {"tier": "silver"}, "matched"),
        ("{params.tier: {present: true}}", {"tier": ""}, "other"),
        ("{params.tier: {present: true}}", {}, "other"),
        ("{params.tier: {absent: true}}", {}, "matched"),
        ("{params.tier: {absent: true}}", {"tier": ""}, "matched"),
        ("{params.tier: {absent: true}}", {"tier": "gold"}, "other"),
        (
            "{params.tier: gold, params.region: north}",
            {"tier": "gold", "region": "north"},
            "matched",
        ),
        ("{params.tier: gold, params.region: north}", {"tier": "gold", "region": "south"}, "other"),
        ("{call.caller: '+8613800138000'}", {}, "matched"),
    ],
)
def test_branch_takes_the_case_whose_conditions_all_hold_else_default(
    condition: str, parameters: dict[str, str], node: str
) -> None:
    decision = last(_branch_flow(condition), started(parameters=parameters))

    assert decision.state.node == node
    assert spoken(decision) == ["命中" if node == "matched" else "默认"]


def test_branch_on_a_collected_slot_takes_the_first_matching_case() -> None:
    flow = make_flow(
        """
        start: ask
        defaults: {on_max_attempts: low}
        nodes:
          ask: {type: collect, slot: score, slot_type: number, prompt: 打分, next: check}
          check:
            type: branch
            cases:
              - {when: {score: {one_of: ["1", "2"]}}, next: low}
              - {when: {score: {present: true}}, next: high}
            default: low
          low: {type: hangup, prompt: 低分}
          high: {type: hangup, prompt: 高分}
        """
    )

    assert last(flow, started(), keys("2")).state.node == "low"
    assert last(flow, started(), keys("5")).state.node == "high"


# -- transfer -------------------------------------------------------------------------------------


def _transfer_flow(target: str, extra: str = "") -> Flow:
    return make_flow(
        f"""
        start: agent
        defaults: {{on_max_attempts: busy}}
        nodes:
          agent:
            type: transfer
            prompt: 正在转接
            target: {target}
            on_failure: busy
            {extra}
          busy: {{type: hangup, prompt: 坐席忙, reason: failed}}
        """
    )


@pytest.mark.parametrize(
    ("target", "field", "value"),
    [
        ("{phone_number: '+8610086'}", "phone_number", "+8610086"),
        ("{skill_queue: '10086001'}", "skill_queue.access_code", "10086001"),
        ("{skill_queue_name: vip}", "skill_queue.name", "vip"),
        ("{agent_id: agent-7}", "agent_id", "agent-7"),
        ("{ivr_flow: '2001'}", "ivr_flow", "2001"),
        ("{sip_uri: 'sip:support@pbx.example.com'}", "sip_uri", "sip:support@pbx.example.com"),
    ],
)
def test_transfer_target_kind_maps_to_its_proto_field(target: str, field: str, value: str) -> None:
    decision = last(_transfer_flow(target), started())

    transfer = decision.response.play_and_transfer.transfer
    oneof, _, queue_field = field.partition(".")
    assert transfer.WhichOneof("target") == oneof
    if queue_field:
        assert transfer.skill_queue.WhichOneof("queue") == queue_field
        assert getattr(transfer.skill_queue, queue_field) == value
    else:
        assert getattr(transfer, field) == value
    assert transfer.mode == pb.TRANSFER_MODE_BLIND
    assert transfer.monitored is False
    assert spoken(decision) == ["正在转接"]
    assert decision.response.dialogue_over is False


def test_transfer_parallel_monitored_with_caller_id_timeout_and_slots_as_data() -> None:
    flow = make_flow(
        """
        start: ask
        defaults: {on_max_attempts: busy}
        nodes:
          ask: {type: collect, slot: account, slot_type: digits, prompt: 账号, next: agent}
          agent:
            type: transfer
            prompt: 正在转接
            target: {skill_queue: "100"}
            mode: parallel
            monitored: true
            caller_id: "+8610086"
            timeout_ms: 30000
            on_failure: busy
          busy: {type: hangup, prompt: 坐席忙, reason: failed}
        """
    )

    transfer = last(flow, started(), keys("1234")).response.play_and_transfer.transfer

    assert transfer.mode == pb.TRANSFER_MODE_PARALLEL
    assert transfer.monitored is True
    assert transfer.caller_id == "+8610086"
    assert transfer.timeout_ms == 30000
    assert dict(transfer.associated_data) == {"account": "1234"}


def test_transfer_success_ends_the_dialogue() -> None:
    decision = last(
        _transfer_flow("{skill_queue: '100'}"),
        started(),
        transferred(pb.TRANSFER_OUTCOME_SUCCEEDED),
    )

    assert action(decision) == "end_dialogue"
    assert decision.response.dialogue_over is True
    assert decision.state.over is True
    assert decision.state.node == "agent"
    assert "transferred to skill_queue 100" in decision.response.diagnostics.note


@pytest.mark.parametrize("outcome", [pb.TRANSFER_OUTCOME_FAILED, pb.TRANSFER_OUTCOME_UNSPECIFIED])
def test_transfer_failure_goes_to_on_failure(outcome: pb.TransferOutcome.ValueType) -> None:
    decision = last(_transfer_flow("{skill_queue: '100'}"), started(), transferred(outcome, "busy"))

    assert decision.state.node == "busy"
    assert action(decision) == "play_and_hang_up"
    assert spoken(decision) == ["坐席忙"]
    assert decision.response.play_and_hang_up.reason == pb.HANG_UP_REASON_FAILED
    assert "transfer failed: busy" in decision.response.diagnostics.note


def test_transfer_keeps_playing_while_the_caller_speaks() -> None:
    decision = last(_transfer_flow("{skill_queue: '100'}"), started(), speech("喂"))

    assert action(decision) == "keep_playing"
    assert decision.state.node == "agent"
    assert decision.state.over is False


@pytest.mark.parametrize("event", [no_input(), played()])
def test_transfer_is_asked_again_when_the_platform_only_played_the_prompts(
    event: pb.DecideNextActionRequest,
) -> None:
    decision = last(_transfer_flow("{skill_queue: '100'}"), started(), event)

    assert action(decision) == "play_and_transfer"
    assert decision.response.play_and_transfer.transfer.skill_queue.access_code == "100"
    assert not decision.response.play_and_transfer.prompts.items
    assert decision.state.node == "agent"
    assert "asking again" in decision.response.diagnostics.note


# -- hang up --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("", pb.HANG_UP_REASON_COMPLETED),
        ("reason: completed", pb.HANG_UP_REASON_COMPLETED),
        ("reason: failed", pb.HANG_UP_REASON_FAILED),
    ],
)
def test_hangup_ends_the_dialogue_with_its_reason(
    reason: str, expected: pb.HangUpReason.ValueType
) -> None:
    flow = make_flow(
        f"""
        start: bye
        defaults: {{on_max_attempts: bye}}
        nodes:
          bye:
            type: hangup
            prompt: 再见
            {reason}
        """
    )

    decision = last(flow, started())

    assert action(decision) == "play_and_hang_up"
    assert decision.response.play_and_hang_up.reason == expected
    assert decision.response.dialogue_over is True
    assert decision.state.over is True
    assert not decision.response.call_data.continuation_token  # no callback will echo it


@pytest.mark.parametrize(
    "event", [speech("喂"), keys("1"), no_input(), played(), started(), ended(), barged_in(900)]
)
def test_any_event_after_hangup_gets_end_dialogue_and_only_counts_the_turn(
    event: pb.DecideNextActionRequest,
) -> None:
    hung_up, after = walk(SAY_CHAINS, started(), keys("2"), event)[1:]

    assert action(after) == "end_dialogue"
    assert after.response.dialogue_over is True
    assert after.state == replace(hung_up.state, turn=hung_up.state.turn + 1)


# -- record ---------------------------------------------------------------------------------------

RECORD = make_flow(
    """
    start: intro
    defaults: {on_max_attempts: thanks}
    nodes:
      intro: {type: say, prompt: 请留言, next: message}
      message:
        type: record
        slot: message
        prompt: 请在提示音后说话
        max_duration_ms: 30000
        end_silence_ms: 2000
        beep: false
        stop_key: "*"
        next: thanks
      thanks: {type: hangup, prompt: 感谢留言}
    """
)


def test_record_action_carries_prompts_and_its_settings() -> None:
    decision = last(RECORD, started())

    record = decision.response.record
    assert spoken(decision) == ["请留言", "请在提示音后说话"]
    assert (record.max_duration_ms, record.end_silence_ms, record.beep, record.stop_key) == (
        30000,
        2000,
        False,
        "*",
    )
    assert decision.state.node == "message"


def test_record_defaults_are_one_minute_three_seconds_silence_beep_and_pound() -> None:
    flow = make_flow(
        """
        start: message
        defaults: {on_max_attempts: done}
        nodes:
          message: {type: record, slot: message, prompt: 请说, next: done}
          done: {type: hangup, prompt: 好}
        """
    )

    record = last(flow, started()).response.record

    assert (record.max_duration_ms, record.end_silence_ms, record.beep, record.stop_key) == (
        60000,
        3000,
        True,
        "#",
    )


def test_recording_finished_stores_the_uri_in_the_slot_and_goes_on() -> None:
    decision = last(RECORD, started(), recorded("https://rec.example.com/c1.wav"))

    assert decision.state.slots == {"message": "https://rec.example.com/c1.wav"}
    assert decision.state.node == "thanks"
    assert spoken(decision) == ["感谢留言"]


@pytest.mark.parametrize("event", [no_input(), platform_error()])
def test_record_without_a_recording_goes_on_with_the_slot_empty(
    event: pb.DecideNextActionRequest,
) -> None:
    decision = last(RECORD, started(), event)

    assert decision.state.node == "thanks"
    assert decision.state.slots == {}


def test_record_keeps_playing_on_other_events() -> None:
    decision = last(RECORD, started(), speech("你好"))

    assert action(decision) == "keep_playing"
    assert decision.state.node == "message"


# -- wait -----------------------------------------------------------------------------------------

WAIT = make_flow(
    """
    start: direct
    defaults: {on_max_attempts: done}
    commands:
      - {intent: agent, keywords: [人工], goto: agent}
    nodes:
      direct: {type: wait, duration_ms: 1500, next: announce}
      announce: {type: say, prompt: 正在查询请稍候, next: working}
      working: {type: wait, duration_ms: 3000, next: done}
      done: {type: hangup, prompt: 查询完成}
      agent: {type: transfer, prompt: 转人工, target: {agent_id: a1}, on_failure: done}
    """
)


def test_wait_node_without_prompts_waits_then_goes_on() -> None:
    waiting, next_one = walk(WAIT, started(), no_input())

    assert action(waiting) == "wait"
    assert waiting.response.wait.duration_ms == 1500
    assert waiting.state.node == "direct"
    assert next_one.state.node == "working"


def test_wait_reached_with_pending_prompts_plays_them_first_then_waits() -> None:
    playing, waiting, done = walk(WAIT, started(), no_input(), played(), no_input())[1:]

    assert action(playing) == "play"
    assert spoken(playing) == ["正在查询请稍候"]
    assert playing.state.node == "working"
    assert action(waiting) == "wait"
    assert waiting.response.wait.duration_ms == 3000
    assert waiting.state.node == "working"
    assert done.state.node == "done"
    assert spoken(done) == ["查询完成"]


def test_wait_keeps_playing_while_its_pending_prompts_play() -> None:
    decision = last(WAIT, started(), no_input(), keys("1"))

    assert action(decision) == "keep_playing"
    assert decision.state.node == "working"


def test_speech_command_interrupts_a_wait() -> None:
    decision = last(WAIT, started(), speech("转人工"))

    assert decision.state.node == "agent"
    assert decision.response.diagnostics.matched_intent == "agent"


def test_platform_error_while_prompts_before_a_wait_play_goes_on_to_the_wait() -> None:
    decision = last(WAIT, started(), no_input(), platform_error())

    assert action(decision) == "wait"


# -- AI gather ------------------------------------------------------------------------------------

GATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "caller name"},
        "city": {"type": "string"},
    },
    "required": ["name", "city"],
}

GATHER = make_flow(
    """
    start: gather
    defaults: {on_max_attempts: failed}
    nodes:
      gather:
        type: ai_gather
        greeting: "您好{params.customer}，请告诉我您的姓名和城市"
        schema:
          type: object
          properties:
            name: {type: string, description: caller name}
            city: {type: string}
          required: [name, city]
        voice: aixia
        user_response_timeout_ms: 8000
        next: done
        on_failure: failed
      done: {type: hangup, prompt: "谢谢{name}"}
      failed: {type: hangup, prompt: 没能完成, reason: failed}
      intro: {type: say, prompt: 接下来由智能助手为您服务, next: gather}
    """
)


def test_ai_gather_action_carries_schema_greeting_language_and_voice() -> None:
    decision = last(GATHER, started(parameters={"customer": "王先生"}))

    gather = decision.response.ai_gather
    assert action(decision) == "ai_gather"
    assert json_format.MessageToDict(gather.parameters_schema) == GATHER_SCHEMA
    assert gather.greeting == "您好王先生，请告诉我您的姓名和城市"
    assert gather.language == "zh-CN"
    assert gather.voice == "aixia"
    assert gather.user_response_timeout_ms == 8000


def test_ai_gather_complete_merges_results_into_slots_and_goes_on() -> None:
    decision = last(
        GATHER, started(), gathered({"name": "李雷", "city": "北京", "vip": True}, complete=True)
    )

    assert decision.state.slots == {"name": "李雷", "city": "北京", "vip": "true"}
    assert decision.state.node == "done"
    assert spoken(decision) == ["谢谢李雷"]


def test_ai_gather_incomplete_keeps_partial_results_and_goes_to_on_failure() -> None:
    decision = last(GATHER, started(), gathered({"name": "李雷"}, complete=False))

    assert decision.state.slots == {"name": "李雷"}
    assert decision.state.node == "failed"
    assert decision.response.play_and_hang_up.reason == pb.HANG_UP_REASON_FAILED


@pytest.mark.parametrize("event", [no_input(), no_match(), platform_error()])
def test_ai_gather_failure_events_go_to_on_failure(event: pb.DecideNextActionRequest) -> None:
    decision = last(GATHER, started(), event)

    assert decision.state.node == "failed"


def test_ai_gather_reached_with_pending_prompts_plays_them_first() -> None:
    flow = replace(GATHER, start="intro")
    playing, gathering = walk(flow, started(), played())

    assert action(playing) == "play"
    assert spoken(playing) == ["接下来由智能助手为您服务"]
    assert playing.state.node == "gather"
    assert action(gathering) == "ai_gather"
    assert gathering.response.ai_gather.greeting == "您好，请告诉我您的姓名和城市"


def test_ai_gather_stores_list_results_as_json() -> None:
    decision = last(
        GATHER, started(), gathered({"name": "李雷", "city": ["北京", "上海"]}, complete=True)
    )

    assert json.loads(decision.state.slots["city"]) == ["北京", "上海"]


def test_ai_gather_stores_whole_numbers_without_a_decimal_point() -> None:
    decision = last(GATHER, started(), gathered({"name": "李雷", "city": 3}, complete=True))

    assert decision.state.slots["city"] == "3"


# -- escalation -----------------------------------------------------------------------------------

ESCALATION = make_flow(
    """
    start: ask
    defaults:
      on_max_attempts: fallback
      max_no_input: 3
      max_no_match: 3
      no_input: [默认没听到一, 默认没听到二]
      no_match: [默认没听懂一, 默认没听懂二]
    nodes:
      ask:
        type: menu
        prompt: 请选择
        choices: [{intent: next, key: "1", keywords: [下一步], next: plain}]
        on_max: node_max
      plain:
        type: menu
        prompt: 请再选择
        choices: [{intent: own, key: "1", next: own_lists}]
      own_lists:
        type: collect
        slot: code
        slot_type: digits
        prompt: 请输入代码
        no_input: [节点没听到]
        no_match: [节点没听懂一, 节点没听懂二]
        max_no_match: 2
        next: node_max
      node_max: {type: hangup, prompt: 节点上限, reason: failed}
      fallback: {type: hangup, prompt: 默认上限, reason: failed}
    """
)


def test_no_input_plays_the_nth_reprompt_then_the_prompt_and_the_max_th_goes_to_on_max() -> None:
    first, second, third = walk(ESCALATION, started(), no_input(), no_input(), no_input())[1:]

    assert spoken(first) == ["默认没听到一", "请选择"]
    assert first.state.count(NO_INPUT) == 1
    assert spoken(second) == ["默认没听到二", "请选择"]
    assert second.state.count(NO_INPUT) == 2
    assert third.state.node == "node_max"
    assert spoken(third) == ["节点上限"]
    assert "no-input 3 of 3 at ask" in third.response.diagnostics.note
    assert "going to node_max" in third.response.diagnostics.note


def test_no_match_max_without_node_on_max_goes_to_defaults_on_max_attempts() -> None:
    decisions = walk(ESCALATION, started(), keys("1"), no_match(), no_match(), no_match())

    assert [d.state.node for d in decisions] == ["ask", "plain", "plain", "plain", "fallback"]
    assert spoken(decisions[2]) == ["默认没听懂一", "请再选择"]
    assert spoken(decisions[3]) == ["默认没听懂二", "请再选择"]
    assert spoken(decisions[4]) == ["默认上限"]


def test_node_level_reprompts_and_max_override_the_defaults() -> None:
    at_node = walk(ESCALATION, started(), keys("1"), keys("1"))
    silent, wrong, gave_up = walk(
        ESCALATION, no_input(), speech("不知道"), speech("还是不知道"), state=at_node[-1].state
    )

    assert spoken(silent) == ["节点没听到", "请输入代码"]
    assert spoken(wrong) == ["节点没听懂一", "请输入代码"]
    # max_no_match: 2 at the node, and the defaults' on_max_attempts applies (no node on_max).
    assert gave_up.state.node == "fallback"


def test_no_input_and_no_match_are_counted_separately() -> None:
    decisions = walk(ESCALATION, started(), no_input(), no_match(), no_input(), no_match())

    assert decisions[-1].state.node == "ask"
    assert decisions[-1].state.counters == {NO_INPUT: 2, NO_MATCH: 2, FAILURES: 4}
    assert spoken(decisions[-1]) == ["默认没听懂二", "请选择"]


def test_the_last_reprompt_repeats_when_attempts_outnumber_reprompts() -> None:
    flow = make_flow(
        """
        start: ask
        defaults:
          on_max_attempts: bye
          max_no_match: 5
          no_match: [一, 二]
        nodes:
          ask: {type: menu, prompt: 请选择, choices: [{intent: a, key: "1", next: bye}]}
          bye: {type: hangup, prompt: 再见}
        """
    )

    third = walk(flow, started(), no_match(), no_match(), no_match())[-1]

    assert spoken(third) == ["二", "请选择"]
    assert third.state.count(NO_MATCH) == 3


def test_an_empty_node_reprompt_list_silences_the_default_reprompts() -> None:
    flow = make_flow(
        """
        start: ask
        defaults: {on_max_attempts: bye, no_input: [默认没听到]}
        nodes:
          ask:
            type: menu
            prompt: 请选择
            no_input: []
            choices: [{intent: a, key: "1", next: bye}]
          bye: {type: hangup, prompt: 再见}
        """
    )

    assert spoken(last(flow, started(), no_input())) == ["请选择"]


BUDGET = make_flow(
    """
    start: first
    defaults:
      on_max_attempts: fallback
      max_failures: 3
      on_failure_budget: budget
    nodes:
      first: {type: menu, prompt: 第一步, choices: [{intent: go, key: "1", next: second}]}
      second: {type: menu, prompt: 第二步, choices: [{intent: go, key: "1", next: fallback}]}
      budget: {type: hangup, prompt: 失败太多, reason: failed}
      fallback: {type: hangup, prompt: 默认上限, reason: failed}
    """
)


def test_failure_budget_spans_nodes_and_goes_to_on_failure_budget() -> None:
    decisions = walk(BUDGET, started(), no_match(), keys("1"), no_input(), no_match())

    assert [d.state.node for d in decisions] == ["first", "first", "second", "second", "budget"]
    assert decisions[-1].response.play_and_hang_up.reason == pb.HANG_UP_REASON_FAILED
    assert "failure budget spent, going to budget" in decisions[-1].response.diagnostics.note


def test_entering_a_new_node_resets_its_counters_but_not_the_failures() -> None:
    miss, entered = walk(BUDGET, started(), no_match(), keys("1"))[1:]

    assert miss.state.counters == {NO_MATCH: 1, FAILURES: 1}
    assert entered.state.counters == {FAILURES: 1}


@pytest.mark.parametrize(
    ("event", "counter"),
    [
        (keys("", timed_out=True), NO_INPUT),
        (keys(""), NO_INPUT),
        (speech(""), NO_MATCH),
        (speech("   "), NO_MATCH),
        (no_match(), NO_MATCH),
        (platform_error(), NO_MATCH),
    ],
)
def test_empty_input_and_errors_escalate_as_no_input_or_no_match(
    event: pb.DecideNextActionRequest, counter: str
) -> None:
    decision = last(ESCALATION, started(), event)

    assert decision.state.counters == {counter: 1, FAILURES: 1}
    expected = "默认没听到一" if counter == NO_INPUT else "默认没听懂一"
    assert spoken(decision) == [expected, "请选择"]


def test_platform_error_note_names_the_error() -> None:
    decision = last(ESCALATION, started(), platform_error())

    assert "platform error 503 asr down" in decision.response.diagnostics.note


# -- global commands ------------------------------------------------------------------------------

COMMANDS = make_flow(
    """
    start: phone
    defaults: {on_max_attempts: bye, no_match: [没听懂]}
    commands:
      - {intent: agent, keywords: [人工, agent], key: "0", goto: agent}
      - {intent: repeat, keywords: [重复, repeat], key: "*", repeat: true}
    nodes:
      phone:
        type: collect
        slot: phone
        slot_type: digits
        min_length: 3
        max_length: 11
        prompt: 请输入号码
        next: confirm
      confirm: {type: say, prompt: "您的号码是{phone}", next: menu}
      menu:
        type: menu
        prompt: 确认请按1
        choices: [{intent: ok, key: "1", keywords: [确认, 号码], next: bye}]
      agent: {type: transfer, prompt: 转人工, target: {skill_queue: "100"}, on_failure: bye}
      bye: {type: hangup, prompt: 再见}
    """
)


@pytest.mark.parametrize(
    "requests",
    [
        (started(), speech("转人工")),
        (started(), speech("I want an agent")),
        (started(), keys("10086"), speech("我要人工")),
        (started(), keys("10086"), keys("0")),
        (started(), keys("10086"), speech("我不查号码，我要人工")),
    ],
)
def test_global_command_goes_to_its_node_from_any_listening_node(
    requests: tuple[pb.DecideNextActionRequest, ...],
) -> None:
    decision = last(COMMANDS, *requests)

    assert decision.state.node == "agent"
    assert action(decision) == "play_and_transfer"
    assert decision.response.diagnostics.matched_intent == "agent"
    assert "global command 'agent'" in decision.response.diagnostics.note


@pytest.mark.parametrize("text", ["不要人工", "别转人工", "I don't want an agent"])
def test_negated_command_keyword_does_not_trigger_the_command(text: str) -> None:
    decision = last(COMMANDS, started(), keys("10086"), speech(text))

    assert decision.state.node == "menu"
    assert decision.state.count(NO_MATCH) == 1
    assert decision.response.diagnostics.matched_intent == ""


def test_menu_listens_for_command_keys_too() -> None:
    decision = last(COMMANDS, started(), keys("10086"))

    assert decision.response.play_and_listen.digits.valid_keys == "*01"


@pytest.mark.parametrize("request_", [speech("请重复一遍"), keys("*")])
def test_repeat_replays_the_last_chain_from_its_entry_without_counting_a_failure(
    request_: pb.DecideNextActionRequest,
) -> None:
    arrived, missed, repeated = walk(COMMANDS, started(), keys("10086"), speech("什么"), request_)[
        1:
    ]

    assert arrived.state.entry == "confirm"
    assert spoken(repeated) == ["您的号码是10086", "确认请按1"]
    assert spoken(repeated) == spoken(arrived)
    first = prompts_of(repeated).items[0].tts
    assert (first.template, dict(first.template_values)) == (
        "您的号码是{phone}",
        {"phone": "10086"},
    )
    assert repeated.state.node == "menu"
    assert repeated.state.count(FAILURES) == missed.state.count(FAILURES) == 1
    assert repeated.response.diagnostics.matched_intent == "repeat"
    assert repeated.response.diagnostics.note == "repeat requested"


@pytest.mark.parametrize(("text", "expected"), [("转人工", "agent"), ("你好", "notice")])
def test_during_an_announcement_only_a_spoken_command_interrupts(text: str, expected: str) -> None:
    flow = make_flow(
        """
        start: notice
        defaults: {on_max_attempts: bye}
        commands:
          - {intent: agent, keywords: [人工], goto: agent}
        nodes:
          notice: {type: say, prompt: 请听公告, wait_for_playback: true, next: bye}
          agent: {type: transfer, prompt: 转人工, target: {skill_queue: "100"}, on_failure: bye}
          bye: {type: hangup, prompt: 再见}
        """
    )

    decision = last(flow, started(), speech(text))

    assert decision.state.node == expected
    assert action(decision) == ("play_and_transfer" if expected == "agent" else "keep_playing")


# -- barge-in -------------------------------------------------------------------------------------


def _barge_flow(defaults: str, notice: str, prompt: str) -> Flow:
    return make_flow(
        f"""
        start: notice
        defaults: {{on_max_attempts: bye, {defaults}}}
        nodes:
          notice: {{type: say, prompt: {notice}, next: ask}}
          ask:
            type: menu
            prompt: {prompt}
            choices: [{{intent: a, key: "1", next: bye}}]
          bye: {{type: hangup, prompt: 再见}}
        """
    )


@pytest.mark.parametrize(
    ("defaults", "notice", "prompt", "mode", "min_speech"),
    [
        ("barge_in: any", "公告", "请选择", pb.BARGE_IN_MODE_ANY, 0),
        ("barge_in: keys", "公告", "请选择", pb.BARGE_IN_MODE_KEYS, 0),
        ("min_speech_ms: 300", "公告", "请选择", pb.BARGE_IN_MODE_ANY, 300),
        ("barge_in: any", "{items: 录音提示, barge_in: none}", "请选择", pb.BARGE_IN_MODE_NONE, 0),
        (
            "barge_in: any",
            "{items: 公告, barge_in: speech, min_speech_ms: 800}",
            "请选择",
            pb.BARGE_IN_MODE_SPEECH,
            800,
        ),
        (
            "barge_in: any",
            "{items: 公告, barge_in: speech, min_speech_ms: 800}",
            "{items: 请按键, barge_in: keys}",
            pb.BARGE_IN_MODE_NONE,
            800,  # the longest, whatever the mode (section 8)
        ),
        ("barge_in: none, min_speech_ms: 300", "公告", "请选择", pb.BARGE_IN_MODE_NONE, 300),
        (
            "barge_in: any, min_speech_ms: 200",
            "{items: 公告, barge_in: any, min_speech_ms: 100}",
            "请选择",
            pb.BARGE_IN_MODE_ANY,
            200,
        ),
    ],
)
def test_barge_in_policy_of_combined_prompts_is_the_strictest(
    defaults: str, notice: str, prompt: str, mode: pb.BargeInMode.ValueType, min_speech: int
) -> None:
    barge_in = prompts_of(last(_barge_flow(defaults, notice, prompt), started())).barge_in

    assert (barge_in.mode, barge_in.min_speech_ms) == (mode, min_speech)


def test_say_level_barge_in_none_makes_the_carried_chain_uninterruptible() -> None:
    flow = make_flow(
        """
        start: legal
        defaults: {on_max_attempts: bye}
        nodes:
          legal: {type: say, prompt: 本次通话可能会被录音, barge_in: none, next: ask}
          ask: {type: menu, prompt: 请选择, choices: [{intent: a, key: "1", next: bye}]}
          bye: {type: hangup, prompt: 再见}
        """
    )

    prompts = prompts_of(last(flow, started()))

    assert prompts.barge_in.mode == pb.BARGE_IN_MODE_NONE
    assert [item.tts.text for item in prompts.items] == ["本次通话可能会被录音", "请选择"]


@pytest.mark.parametrize(
    ("defaults", "prompt", "speech_ms", "expected", "note"),
    [
        ("barge_in: any", "请选择", 0, "stop_playing", "caller spoke 0 ms over the prompt"),
        ("barge_in: speech, min_speech_ms: 500", "请选择", 500, "stop_playing", "stop it"),
        (
            "barge_in: speech, min_speech_ms: 500",
            "请选择",
            499,
            "keep_playing",
            "barge-in too short (spoke 499 ms, needs 500 ms)",
        ),
        (
            "barge_in: keys",
            "请选择",
            2000,
            "keep_playing",
            "speech barge-in not allowed here (spoke 2000 ms)",
        ),
        (
            "barge_in: any, min_speech_ms: 500",
            "{items: 请选择, barge_in: none}",
            2000,
            "keep_playing",
            "speech barge-in not allowed here",
        ),
    ],
)
def test_barged_in_stops_playing_only_when_speech_may_interrupt_for_long_enough(
    defaults: str, prompt: str, speech_ms: int, expected: str, note: str
) -> None:
    flow = make_flow(
        f"""
        start: ask
        defaults: {{on_max_attempts: bye, {defaults}}}
        nodes:
          ask:
            type: menu
            prompt: {prompt}
            choices: [{{intent: a, key: "1", next: bye}}]
          bye: {{type: hangup, prompt: 再见}}
        """
    )

    before, decision = walk(flow, started(), barged_in(speech_ms))

    assert action(decision) == expected
    assert note in decision.response.diagnostics.note
    assert decision.state.node == "ask"
    assert decision.state.counters == before.state.counters


def test_barged_in_during_an_uninterruptible_carried_announcement_keeps_playing() -> None:
    flow = make_flow(
        """
        start: legal
        defaults: {on_max_attempts: bye}
        nodes:
          legal: {type: say, prompt: 本次通话可能会被录音, barge_in: none, next: ask}
          ask: {type: menu, prompt: 请选择, choices: [{intent: a, key: "1", next: bye}]}
          bye: {type: hangup, prompt: 再见}
        """
    )

    assert action(last(flow, started(), barged_in(3000))) == "keep_playing"


# -- call start, call end, call data, diagnostics -------------------------------------------------


def test_first_event_that_is_not_call_started_starts_the_flow_lazily() -> None:
    decision = last(MENU, speech("喂，你好"))

    assert decision.state.node == "main"
    assert decision.state.turn == 1
    assert spoken(decision) == ["话费请按1，流量请按2"]
    assert decision.state.count(NO_MATCH) == 0
    assert (
        "call started by its first event (speech_recognized)" in decision.response.diagnostics.note
    )


@pytest.mark.parametrize("flow", [None, MENU])
def test_a_call_ending_before_it_started_gets_an_end_dialogue_tombstone(flow: Flow | None) -> None:
    decision = decide(flow, None, ended())

    assert action(decision) == "end_dialogue"
    assert decision.response.dialogue_over is True
    assert decision.state == CallState(CALL_ID, over=True, turn=1)
    assert decision.response.diagnostics.note == "call ended before the dialogue started"


def test_an_unknown_call_without_a_flow_gets_end_dialogue() -> None:
    decision = decide(None, None, speech("喂"))

    assert action(decision) == "end_dialogue"
    assert decision.state.over is True
    assert decision.state.flow_id == ""


def test_events_after_a_tombstone_get_end_dialogue() -> None:
    tombstone = decide(None, None, ended()).state

    decision = decide(MENU, tombstone, started())

    assert action(decision) == "end_dialogue"
    assert decision.state == replace(tombstone, turn=2)


def test_a_call_whose_flow_is_gone_gets_end_dialogue() -> None:
    state = last(MENU, started()).state

    decision = decide(None, state, keys("1"))

    assert action(decision) == "end_dialogue"
    assert decision.state.over is True
    assert decision.state.node == "main"


@pytest.mark.parametrize(
    ("party", "note"),
    [(pb.HANG_UP_PARTY_CALLER, "caller hung up"), (pb.HANG_UP_PARTY_SYSTEM, "call ended")],
)
def test_call_ended_mid_call_ends_the_dialogue(party: pb.HangUpParty.ValueType, note: str) -> None:
    decision = last(MENU, started(), ended(party))

    assert action(decision) == "end_dialogue"
    assert decision.state.over is True
    assert decision.response.diagnostics.note == note


def test_call_started_again_mid_call_replays_without_advancing_failures() -> None:
    first, missed, again = walk(SAY_CHAINS, started(), no_match(), started())

    assert spoken(again) == spoken(first)
    assert again.state.node == "ask"
    assert again.state.count(FAILURES) == missed.state.count(FAILURES) == 1
    assert again.state.turn == 3
    assert again.response.diagnostics.note == "call started again: replaying the last prompts"


def test_a_call_resting_at_a_node_missing_from_its_flow_is_a_runtime_error() -> None:
    state = CallState(CALL_ID, "t", "1", "vanished")

    with pytest.raises(FlowRuntimeError, match="node 'vanished' is not in flow t 1"):
        decide(MENU, state, keys("1"))


CALL_DATA = make_flow(
    """
    start: ask
    defaults: {on_max_attempts: bye}
    nodes:
      ask:
        type: menu
        prompt: "{params.customer}您好，来电号码{call.caller}，拨打{call.callee}"
        choices: [{intent: a, key: "1", next: bye}]
      bye: {type: hangup, prompt: 再见}
    """
)


def test_call_data_parameters_are_merged_into_state_and_echoed() -> None:
    first, second = walk(
        CALL_DATA,
        started(parameters={"customer": "王先生"}, passthrough="opaque-123"),
        make_request("no_input", pb.NoInput(), parameters={"order": "42"}),
    )

    assert first.state.params == {"customer": "王先生"}
    assert first.state.passthrough == "opaque-123"
    assert first.response.call_data == pb.CallData(
        parameters={"customer": "王先生"}, passthrough="opaque-123", continuation_token="ask-1"
    )
    assert second.state.params == {"customer": "王先生", "order": "42"}
    assert second.response.call_data == pb.CallData(
        parameters={"customer": "王先生", "order": "42"},
        passthrough="opaque-123",
        continuation_token="ask-2",
    )


def test_templates_read_call_parameters_and_call_parties() -> None:
    decision = last(CALL_DATA, started(parameters={"customer": "王先生"}))

    tts = prompts_of(decision).items[0].tts
    assert tts.text == f"王先生您好，来电号码{CALLER}，拨打{CALLEE}"
    assert dict(tts.template_values) == {
        "params.customer": "王先生",
        "call.caller": CALLER,
        "call.callee": CALLEE,
    }


def test_diagnostics_explain_the_decision() -> None:
    decision = last(MENU, started(), keys("1"))

    diagnostics = decision.response.diagnostics
    assert diagnostics.flow_id == "t"
    assert diagnostics.flow_version == "1"
    assert diagnostics.node_id == "bill"
    assert diagnostics.matched_intent == "bill"
    assert diagnostics.turn == 2
    assert diagnostics.note == "chose 'bill' by key 1"


def test_collect_number_rejects_a_value_outside_its_pattern() -> None:
    flow = make_flow(
        """
        start: score
        defaults: {on_max_attempts: bye}
        nodes:
          score:
            type: collect
            slot: score
            slot_type: number
            pattern: "[1-5]"
            max_length: 1
            prompt: 请打分
            invalid: [请说1到5之间的数字]
            next: bye
          bye: {type: hangup, prompt: "您的评分是{score}分"}
        """
    )

    decision = last(flow, started(), keys("9"))

    assert decision.state.node == "score"
    assert spoken(decision) == ["请说1到5之间的数字", "请打分"]


# -- purity and determinism -----------------------------------------------------------------------

CARRIER_ZH_CALL = (
    started(parameters={"customer_id": "C-1001", "vip": "no"}, passthrough="trans-data-7"),
    speech("嗯"),
    speech("我想查一下话费"),
    speech("幺三八 零零一三 八零零零"),
    speech("再说一遍"),
    keys("1"),
    no_input(),
    keys("2"),
    keys("2"),
)


def test_decide_does_not_mutate_its_inputs(catalog: Catalog) -> None:
    flow = catalog.flows["carrier-zh"]
    flow_before = copy.deepcopy(flow)
    state: CallState | None = None
    for request in CARRIER_ZH_CALL:
        state_before = copy.deepcopy(state)
        request_before = request.SerializeToString(deterministic=True)

        decision = decide(flow, state, request)

        assert state == state_before
        assert request.SerializeToString(deterministic=True) == request_before
        assert decision.state != state
        state = decision.state
    assert flow == flow_before


def test_decide_is_deterministic(catalog: Catalog) -> None:
    flow = catalog.flows["carrier-zh"]

    first = walk(flow, *CARRIER_ZH_CALL)
    second = walk(flow, *CARRIER_ZH_CALL)

    assert [d.state for d in first] == [d.state for d in second]
    assert [d.response for d in first] == [d.response for d in second]
    assert [d.response.SerializeToString(deterministic=True) for d in first] == [
        d.response.SerializeToString(deterministic=True) for d in second
    ]


# -- state encoding -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [
        CallState(CALL_ID),
        CallState(CALL_ID, over=True, turn=1),
        CallState(
            call_id=CALL_ID,
            flow_id="carrier-zh",
            flow_version="2026.11.1",
            node="anything_else",
            entry="bill_answer",
            slots={"phone": "13800138000", "note": "话费"},
            params={"customer_id": "C-1001"},
            passthrough="trans-data-7",
            counters={NO_MATCH: 1, FAILURES: 2},
            turn=7,
            over=False,
            caller=CALLER,
            callee=CALLEE,
            barge_in_mode=pb.BARGE_IN_MODE_SPEECH,
            min_speech_ms=300,
            deferred=True,
            confirming=True,
            capabilities=(pb.CAPABILITY_QUEUE_STATUS,),
            queue={"position": 3, "agents_online": 0},
            assistant={"reason": "done", "transcript": "user: hi"},
        ),
    ],
)
def test_state_encode_decode_round_trip(state: CallState) -> None:
    assert decode(encode(state)) == state


def test_state_encoding_leaves_out_empty_values_and_keeps_text_readable() -> None:
    state = CallState(CALL_ID, "t", "1", "ask", slots={"name": "张三"}, turn=2)

    assert (
        encode(state)
        == '{"c":"call-1","f":"t","n":"ask","s":{"name":"张三"},"u":2,"v":"1"}'.encode()
    )


def test_every_state_of_a_demo_call_round_trips_and_stays_small(catalog: Catalog) -> None:
    decisions = walk(catalog.flows["carrier-zh"], *CARRIER_ZH_CALL)

    assert decisions[-1].state.over is True
    for decision in decisions:
        blob = encode(decision.state)
        assert decode(blob) == decision.state
        assert len(blob) < 2048


# -- demo flows end to end ------------------------------------------------------------------------


def test_carrier_zh_bill_inquiry_walk(catalog: Catalog) -> None:
    decisions = walk(catalog.flows["carrier-zh"], *CARRIER_ZH_CALL)

    assert [d.state.node for d in decisions] == [
        "main_menu",
        "main_menu",
        "bill_phone",
        "anything_else",
        "anything_else",
        "main_menu",
        "main_menu",
        "anything_else",
        "goodbye",
    ]
    welcome, hmm, bill, answer, repeated, back, silent, data, goodbye = decisions
    assert spoken(welcome)[0] == "欢迎致电中国移动客服热线。本次通话可能会被录音。"
    assert spoken(hmm)[0] == "抱歉，我没有听懂。"
    assert bill.response.diagnostics.matched_intent == "bill"
    assert (
        spoken(answer)[0]
        == "您查询的号码13800138000本月账单已生成，详细账单已通过短信发送到该号码。"
    )
    assert spoken(repeated) == spoken(answer)
    assert back.response.diagnostics.matched_intent == "main_menu"
    assert spoken(silent)[0] == "抱歉，我没有听到您的声音。"
    assert spoken(data)[0].startswith("您当前的套餐包含每月30GB国内流量")
    assert spoken(goodbye) == ["感谢您的来电，再见。"]
    assert goodbye.response.play_and_hang_up.reason == pb.HANG_UP_REASON_COMPLETED
    assert goodbye.state.slots == {"phone": "13800138000"}
    assert goodbye.state.params == {"customer_id": "C-1001", "vip": "no"}


def test_carrier_zh_three_failures_reach_an_agent_and_a_busy_agent_hangs_up(
    catalog: Catalog,
) -> None:
    decisions = walk(
        catalog.flows["carrier-zh"],
        started(),
        speech("不要人工"),
        keys("7"),
        no_input(),
        transferred(pb.TRANSFER_OUTCOME_FAILED, "no agent free"),
    )

    assert [d.state.node for d in decisions] == [
        "main_menu",
        "main_menu",
        "main_menu",
        "agent_after_failures",
        "agent_busy",
    ]
    transfer = decisions[3].response.play_and_transfer
    assert transfer.transfer.skill_queue.access_code == "10086001"
    assert [item.tts.text for item in transfer.prompts.items] == [
        "看来我没能帮到您，正在为您转接人工客服，请稍候。"
    ]
    assert decisions[4].response.play_and_hang_up.reason == pb.HANG_UP_REASON_FAILED
    assert decisions[4].response.dialogue_over is True


def test_carrier_en_walk_with_negation_clause_break_and_agent(catalog: Catalog) -> None:
    decisions = walk(
        catalog.flows["carrier-en"],
        started(),
        speech("not the bill, data please"),
        keys("1"),
        speech("I'd like to check my bill"),
        keys("4155550123"),
        speech("I don't want the menu, get me an operator"),
        transferred(pb.TRANSFER_OUTCOME_SUCCEEDED),
    )

    assert [d.state.node for d in decisions] == [
        "main_menu",
        "anything_else",
        "main_menu",
        "bill_phone",
        "anything_else",
        "agent",
        "agent",
    ]
    _, data, _, bill, answer, agent, done = decisions
    assert data.response.diagnostics.matched_intent == "data_plan"
    assert spoken(data)[0].startswith("Your plan includes 30 gigabytes")
    assert bill.response.diagnostics.matched_intent == "bill"
    assert spoken(answer)[0].startswith("The bill for 4155550123 is ready")
    assert prompts_of(answer).items[0].tts.language == "en-US"
    assert agent.response.diagnostics.matched_intent == "agent"
    assert agent.response.play_and_transfer.transfer.skill_queue.access_code == "18005550101"
    assert action(done) == "end_dialogue"
    assert done.state.over is True


def test_survey_outbound_walk_starts_lazily_and_records_a_complaint(catalog: Catalog) -> None:
    decisions = walk(
        catalog.resolve("survey-2026q4"),
        speech("喂"),
        speech("可以"),
        speech("两"),
        recorded("https://rec.example.com/survey/c1.wav"),
    )

    assert [d.state.node for d in decisions] == ["intro", "score", "complaint", "thanks"]
    intro, score, complaint, thanks = decisions
    assert spoken(intro)[0].startswith("您好，这里是中国移动客服中心")
    assert intro.response.play_and_listen.digits.valid_keys == "12"
    assert spoken(score) == ["请您为本次服务打分，1到5分，5分表示非常满意。"]
    assert action(complaint) == "record"
    assert complaint.response.record.max_duration_ms == 60000
    assert spoken(thanks) == ["您的评分是2分，感谢您的反馈，祝您生活愉快，再见。"]
    assert thanks.state.slots == {
        "consent": "yes",
        "score": "2",
        "complaint_recording": "https://rec.example.com/survey/c1.wav",
    }


@pytest.mark.parametrize(
    ("requests", "node", "reason"),
    [
        ((keys("1"), keys("5")), "thanks", pb.HANG_UP_REASON_COMPLETED),
        ((speech("不方便"),), "bye_later", pb.HANG_UP_REASON_COMPLETED),
        ((keys("2"),), "bye_later", pb.HANG_UP_REASON_COMPLETED),
        ((no_input(), no_input()), "bye_unreached", pb.HANG_UP_REASON_FAILED),
    ],
)
def test_survey_outcomes(
    catalog: Catalog,
    requests: tuple[pb.DecideNextActionRequest, ...],
    node: str,
    reason: pb.HangUpReason.ValueType,
) -> None:
    decision = last(catalog.flows["survey"], started(), *requests)

    assert decision.state.node == node
    assert decision.response.play_and_hang_up.reason == reason
    assert decision.response.dialogue_over is True
