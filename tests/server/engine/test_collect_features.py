"""Collect nodes with the newer slot types in the pure engine: what the platform is asked to
collect, dates relative to the call in the flow's time zone, and the confirmation step."""

from __future__ import annotations

from datetime import datetime

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.flow import Flow
from tests.server.engine.test_interpreter import (
    keys,
    last,
    make_flow,
    no_input,
    no_match,
    speech,
    spoken,
    started,
    walk,
)


def at(request: pb.DecideNextActionRequest, moment: str) -> pb.DecideNextActionRequest:
    request.occurred_at.FromDatetime(datetime.fromisoformat(moment))
    return request


def collect_flow(fields: str, *, top: str = "") -> Flow:
    return make_flow(
        f"""
        start: ask
        {top}
        defaults: {{on_max_attempts: bye}}
        nodes:
          ask: {{type: collect, slot: value, prompt: 请说, next: done, {fields}}}
          done: {{type: hangup, prompt: "{{value}}"}}
          bye: {{type: hangup, prompt: 再见}}
        """
    )


@pytest.mark.parametrize(
    ("fields", "low", "high", "valid_keys"),
    [
        ("slot_type: mobile_cn", 11, 11, "0123456789#"),
        ("slot_type: e164", 8, 17, "0123456789#"),
        ("slot_type: amount", 1, 12, "0123456789*#"),
        ("slot_type: amount, terminator: '*'", 1, 12, "0123456789*"),
        ("slot_type: integer", 1, 12, "0123456789#"),
        ("slot_type: date, keys: true", 4, 8, "0123456789#"),
        ("slot_type: time, keys: true", 3, 4, "0123456789#"),
        ("slot_type: choice, options: [{value: a, key: '1'}, {value: b, key: '3'}]", 1, 1, "13"),
    ],
)
def test_collect_asks_for_the_keys_its_slot_type_takes(
    fields: str, low: int, high: int, valid_keys: str
) -> None:
    digits = last(collect_flow(fields), started()).response.play_and_listen.digits
    assert (digits.min_digits, digits.max_digits, digits.valid_keys) == (low, high, valid_keys)


@pytest.mark.parametrize(
    "fields",
    [
        "slot_type: date",
        "slot_type: time",
        "slot_type: regex, pattern: 'x'",
        "slot_type: choice, options: [a, b]",
    ],
)
def test_types_without_natural_keys_listen_for_speech_only(fields: str) -> None:
    listen = last(collect_flow(fields), started()).response.play_and_listen
    assert not listen.HasField("digits")
    assert listen.HasField("speech")


def test_a_choice_slot_gives_its_options_as_recogniser_hints() -> None:
    flow = collect_flow(
        "slot_type: choice, options: [{value: small, keywords: [小杯]}, {value: large, keywords: [大杯]}]"
    )
    hints = last(flow, started()).response.play_and_listen.speech.hints
    assert list(hints) == ["small", "小杯", "large", "大杯"]


@pytest.mark.parametrize(
    ("moment", "said", "expected"),
    [
        # 17:00 UTC on the 4th is already the 5th in Shanghai: tomorrow is the 6th.
        ("2026-03-04T17:00:00+00:00", "明天", "2026-03-06"),
        ("2026-03-04T15:00:00+00:00", "明天", "2026-03-05"),
        ("2026-03-04T15:00:00+00:00", "next monday", "2026-03-09"),
        ("2026-03-04T15:00:00+00:00", "下午三点", "2026-03-04"),
    ],
)
def test_dates_are_relative_to_the_call_in_the_flows_time_zone(
    moment: str, said: str, expected: str
) -> None:
    flow = collect_flow("slot_type: date", top="timezone: Asia/Shanghai")
    decision = last(flow, at(started(), moment), at(speech(said), moment))
    if said == "下午三点":
        assert decision.state.node == "ask"  # a time is not a date
        return
    assert decision.state.slots == {"value": expected}


def test_a_date_without_any_call_time_is_a_no_match_that_says_why() -> None:
    decision = last(collect_flow("slot_type: date"), started(), speech("明天"))
    assert decision.state.node == "ask"
    assert "call's date is unknown" in decision.response.diagnostics.note


# -- confirmation ---------------------------------------------------------------------------------

CONFIRM = make_flow(
    """
    start: ask
    defaults:
      on_max_attempts: bye
      max_no_match: 2
      no_match: [没听清。]
    commands: [{intent: repeat, keywords: [重复], repeat: true}]
    nodes:
      ask:
        type: collect
        slot: phone
        slot_type: mobile_cn
        prompt: 请说手机号
        confirm: 您输入的是{phone}，确认请按1，重新输入请按2
        next: done
      done: {type: hangup, prompt: "好的{phone}"}
      bye: {type: hangup, prompt: "再见{phone}"}
    """
)
PHONE = "幺三八 零零一三 八零零零"
CONFIRM_TEXT = "您输入的是13800138000，确认请按1，重新输入请按2"


def test_a_value_is_read_back_and_held_until_confirmed() -> None:
    decision = last(CONFIRM, started(), speech(PHONE))
    assert decision.state.node == "ask"
    assert decision.state.slots == {"phone": "13800138000"}
    assert decision.state.confirming
    assert spoken(decision) == [CONFIRM_TEXT]
    digits = decision.response.play_and_listen.digits
    assert (digits.max_digits, digits.valid_keys) == (1, "12")
    assert "phone collected; confirming" in decision.response.diagnostics.note


@pytest.mark.parametrize("answer", [keys("1"), speech("对的"), speech("yes")])
def test_yes_keeps_the_value_and_goes_on(answer: pb.DecideNextActionRequest) -> None:
    decision = last(CONFIRM, started(), speech(PHONE), answer)
    assert decision.state.node == "done"
    assert spoken(decision) == ["好的13800138000"]
    assert not decision.state.confirming


@pytest.mark.parametrize("answer", [keys("2"), speech("不对"), speech("no")])
def test_no_clears_the_value_and_asks_again(answer: pb.DecideNextActionRequest) -> None:
    decision = last(CONFIRM, started(), speech(PHONE), answer)
    assert decision.state.node == "ask"
    assert decision.state.slots == {}
    assert not decision.state.confirming
    assert spoken(decision) == ["请说手机号"]
    again = walk(CONFIRM, started(), speech(PHONE), answer, speech("13900139000"))[-1]
    assert spoken(again) == ["您输入的是13900139000，确认请按1，重新输入请按2"]


def test_other_answers_escalate_with_the_confirmation_question() -> None:
    decision = last(CONFIRM, started(), speech(PHONE), speech("随便"))
    assert spoken(decision) == ["没听清。", CONFIRM_TEXT]
    assert "confirming phone" in decision.response.diagnostics.note
    silent = last(CONFIRM, started(), speech(PHONE), no_input())
    assert spoken(silent)[-1] == CONFIRM_TEXT


def test_giving_up_on_a_confirmation_forgets_the_unconfirmed_value() -> None:
    decision = last(CONFIRM, started(), speech(PHONE), no_match(), no_match())
    assert decision.state.node == "bye"
    assert spoken(decision) == ["再见"]


def test_repeat_during_confirmation_repeats_the_confirmation() -> None:
    decision = last(CONFIRM, started(), speech(PHONE), speech("重复"))
    assert spoken(decision) == [CONFIRM_TEXT]
    assert decision.state.confirming
    assert last(CONFIRM, started(), speech(PHONE), speech("重复"), keys("1")).state.node == "done"


def test_a_correction_in_the_same_breath_takes_the_new_value_and_reads_it_back() -> None:
    decision = last(CONFIRM, started(), speech(PHONE), speech("不对，是13900139000"))
    assert decision.state.node == "ask"
    assert decision.state.slots == {"phone": "13900139000"}
    assert decision.state.confirming
    assert spoken(decision) == ["您输入的是13900139000，确认请按1，重新输入请按2"]
    assert "corrected while confirming" in decision.response.diagnostics.note
    done = last(CONFIRM, started(), speech(PHONE), speech("不对，是13900139000"), keys("1"))
    assert spoken(done) == ["好的13900139000"]


@pytest.mark.parametrize(
    ("fields", "answer"),
    [
        ("slot_type: time", speech("下午三点")),  # takes no keys
        ("slot_type: text", speech("随便说说")),
        ("slot_type: regex, pattern: '[A-Z]{2}[0-9]{4}'", speech("AB1234")),
        ("slot_type: digits, speech: false", keys("1234")),  # takes no speech
        ("slot_type: choice, options: [large, small]", speech("large")),  # no option has a key
    ],
    ids=["time", "text", "regex", "keys only", "choice without keys"],
)
def test_a_confirmation_listens_for_keys_1_2_and_speech_whatever_the_slot_takes(
    fields: str, answer: pb.DecideNextActionRequest
) -> None:
    flow = collect_flow(f"{fields}, confirm: '是{{value}}吗？确认请按1，重新输入请按2'")
    confirming = last(flow, started(), answer)
    assert confirming.state.confirming
    listen = confirming.response.play_and_listen
    assert (listen.digits.min_digits, listen.digits.max_digits) == (1, 1)
    assert listen.digits.valid_keys == "12"
    assert listen.HasField("speech")
    assert listen.speech.hints == []  # a yes/no, not the options
    assert last(flow, started(), answer, keys("1")).state.node == "done"
    assert last(flow, started(), answer, speech("对的")).state.node == "done"
    assert last(flow, started(), answer, keys("2")).state.slots == {}


# -- what callers say, through the engine (issue 17 QA) ----------------------------------------

WEDNESDAY_MORNING = "2026-03-04T10:00:00+08:00"  # a Wednesday in Asia/Shanghai


@pytest.mark.parametrize(
    ("fields", "said", "stored"),
    [
        ("slot_type: integer, min: 1, max: 20", "嗯，我们一共三个人吧", "3"),
        ("slot_type: integer, min: 1, max: 20", "um, I want two tickets please", "2"),
        ("slot_type: amount", "大概1.5万吧", "15000.00"),
        ("slot_type: amount", "about twelve hundred dollars thanks", "1200.00"),
        ("slot_type: date", "那个，下周星期三吧", "2026-03-11"),
        ("slot_type: date", "明天不行，后天吧", "2026-03-06"),
        ("slot_type: time", "今晚八点", "20:00"),
        ("slot_type: time", "下午三点过一刻", "15:15"),
        ("slot_type: time", "4.30pm please", "16:30"),
    ],
)
def test_what_callers_say_fills_the_slot(fields: str, said: str, stored: str) -> None:
    flow = collect_flow(fields, top="timezone: Asia/Shanghai")
    decision = last(flow, at(started(), WEDNESDAY_MORNING), at(speech(said), WEDNESDAY_MORNING))
    assert (decision.state.node, decision.state.slots.get("value")) == ("done", stored)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ("slot_type: integer", "两三个人"),
        ("slot_type: integer", "五个以上"),
        ("slot_type: integer", "more than five"),
        ("slot_type: amount", "几千块"),
        ("slot_type: amount", "一千多块"),
        ("slot_type: date", "周三还是周四"),
        ("slot_type: date", "明天不行"),
        ("slot_type: time", "三点多"),
        ("slot_type: time", "3 to 4 pm"),
    ],
)
def test_an_estimate_a_bound_or_a_choice_is_asked_again(fields: str, said: str) -> None:
    flow = collect_flow(fields, top="timezone: Asia/Shanghai")
    decision = last(flow, at(started(), WEDNESDAY_MORNING), at(speech(said), WEDNESDAY_MORNING))
    assert decision.state.node == "ask"
    assert decision.state.counters.get("no_match") == 1
    assert "value" not in decision.state.slots


def test_a_hesitation_then_no_at_confirmation_asks_again() -> None:
    # Regression (issue 17 QA): "嗯，不对" confirmed the value read back.
    flow = collect_flow("slot_type: integer, confirm: '{value}位，对吗？'")
    decision = last(flow, started(), speech("三位"), speech("嗯，不对"))
    assert decision.state.node == "ask"
    assert "value" not in decision.state.slots
