"""Business logic in the pure engine: set nodes, richer branch conditions, business hours at a
fixed call time, and fulfillment nodes — which stop the turn with a pending hook that `resume`
completes with the hook's result."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.flow import Flow
from server.engine.hooks import FULFILLMENT, HookResult, Outcome
from server.engine.interpreter import Decision, decide, resume
from server.engine.state import CallState
from tests.server.engine.test_interpreter import (
    CALL_ID,
    action,
    last,
    make_flow,
    speech,
    spoken,
    started,
    transferred,
    walk,
)


def at(request: pb.DecideNextActionRequest, moment: str) -> pb.DecideNextActionRequest:
    """The request with occurred_at set (an ISO time with its offset)."""
    request.occurred_at.FromDatetime(datetime.fromisoformat(moment))
    return request


# -- set ------------------------------------------------------------------------------------------

SET_FLOW = make_flow(
    """
    start: remember
    defaults: {on_max_attempts: bye}
    slots: [tier, name]
    nodes:
      remember:
        type: set
        set: {tier: gold, greeting: "您好{name}", params.segment: "{tier}-vip"}
        clear: [name]
        next: bye
      bye: {type: hangup, prompt: "{greeting}，{tier}，{name}"}
    """
)


def test_set_renders_every_value_before_assigning_and_clears() -> None:
    decision = last(SET_FLOW, started())
    # "{tier}" in params.segment is rendered before tier is set: empty.
    assert decision.state.slots == {"tier": "gold", "greeting": "您好"}
    assert decision.state.params == {"segment": "-vip"}
    assert spoken(decision) == ["您好，gold，"]


def test_set_values_see_the_state_before_the_node_and_params_are_echoed() -> None:
    flow = make_flow(
        """
        start: ask
        defaults: {on_max_attempts: bye}
        nodes:
          ask: {type: collect, slot: name, slot_type: text, prompt: 贵姓, next: remember}
          remember:
            type: set
            set: {tier: gold, greeting: "您好{name}", params.segment: "{tier}-vip"}
            next: bye
          bye: {type: hangup, prompt: "{greeting}"}
        """
    )
    done = last(flow, started(), speech("张三"))
    assert done.state.slots == {"name": "张三", "tier": "gold", "greeting": "您好张三"}
    assert done.state.params == {"segment": "-vip"}
    assert spoken(done) == ["您好张三"]


def test_set_params_go_back_to_the_platform_in_call_data() -> None:
    flow = make_flow(
        """
        start: mark
        defaults: {on_max_attempts: mark}
        nodes:
          mark: {type: set, set: {params.route: "vip"}, clear: [params.old], next: ask}
          ask: {type: menu, prompt: 请选择, choices: [{intent: a, key: "1", next: ask}]}
        """
    )
    decision = last(flow, started(parameters={"old": "x", "keep": "y"}))
    assert dict(decision.response.call_data.parameters) == {"keep": "y", "route": "vip"}


@pytest.mark.parametrize(
    ("last_node", "event", "action"),
    [
        ("{type: hangup, prompt: 再见}", None, "play_and_hang_up"),
        (
            "{type: transfer, target: {skill_queue: '1'}, on_failure: gone}",
            None,
            "play_and_transfer",
        ),
        (
            "{type: transfer, target: {skill_queue: '1'}, on_failure: gone}",
            transferred(pb.TRANSFER_OUTCOME_SUCCEEDED),
            "end_dialogue",
        ),
    ],
    ids=["hang-up", "transfer", "end after the transfer"],
)
def test_params_set_right_before_a_final_action_reach_the_platform(
    last_node: str, event: pb.DecideNextActionRequest | None, action: str
) -> None:
    flow = make_flow(
        f"""
        start: mark
        defaults: {{on_max_attempts: last}}
        nodes:
          mark: {{type: set, set: {{params.outcome: resolved}}, next: last}}
          last: {last_node}
          gone: {{type: hangup}}
        """
    )
    turns = [started(parameters={"keep": "y"}, passthrough="ivr-data")]
    decision = last(flow, *turns, *([event] if event else []))
    assert decision.response.WhichOneof("action") == action
    assert dict(decision.response.call_data.parameters) == {"keep": "y", "outcome": "resolved"}
    assert decision.response.call_data.passthrough == "ivr-data"


# -- branch conditions ----------------------------------------------------------------------------


def _numeric_flow(condition: str) -> Flow:
    return make_flow(
        f"""
        start: ask
        defaults: {{on_max_attempts: other}}
        slots: [limit]
        nodes:
          ask: {{type: collect, slot: amount, slot_type: amount, prompt: 金额, next: check}}
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
    ("condition", "said", "parameters", "node"),
    [
        ("{amount: {lt: 100}}", "九十九块", {}, "matched"),
        ("{amount: {lt: 100}}", "一百块", {}, "other"),
        ("{amount: {le: 100}}", "一百块", {}, "matched"),
        ("{amount: {gt: 99.5}}", "ninety nine dollars fifty", {}, "other"),
        ("{amount: {ge: 99.5}}", "ninety nine dollars fifty", {}, "matched"),
        ("{amount: {gt: '{params.limit}'}}", "三百块", {"limit": "200"}, "matched"),
        ("{amount: {gt: '{params.limit}'}}", "三百块", {}, "other"),
        ("{amount: {matches: '\\d{3}\\.\\d{2}'}}", "三百块", {}, "matched"),
        ("{amount: {matches: '\\d{3}\\.\\d{2}'}}", "三块", {}, "other"),
        ("{amount: {gt: 10, lt: 20}}", "十五块", {}, "matched"),
        ("{amount: {gt: 10, lt: 20}}", "二十五块", {}, "other"),
    ],
)
def test_branch_compares_numbers_with_literals_templates_and_patterns(
    condition: str, said: str, parameters: dict[str, str], node: str
) -> None:
    flow = _numeric_flow(condition)
    decision = last(flow, started(parameters=parameters), speech(said))
    assert decision.state.node == node


# -- hours ----------------------------------------------------------------------------------------

HOURS_FLOW = make_flow(
    """
    start: office
    timezone: Asia/Shanghai
    defaults: {on_max_attempts: closed}
    nodes:
      office:
        type: hours
        schedule:
          mon-fri: ["09:00-12:00", "13:30-18:00"]
          sat: "10:00-16:00"
        holidays: [2026-10-01..2026-10-07, "2026-01-01"]
        special_days:
          2026-10-10: ["09:00-18:00"]
        open: open
        closed: closed
        holiday: holiday
      open: {type: hangup, prompt: 营业中}
      closed: {type: hangup, prompt: 已下班}
      holiday: {type: hangup, prompt: 节假日}
    """
)


@pytest.mark.parametrize(
    ("moment", "node"),
    [
        ("2026-03-04T10:00:00+08:00", "open"),  # Wednesday morning in Shanghai
        ("2026-03-04T02:00:00+00:00", "open"),  # the same moment written in UTC
        ("2026-03-04T12:30:00+08:00", "closed"),  # lunch break
        ("2026-03-04T10:00:00+00:00", "closed"),  # 18:00 in Shanghai
        ("2026-03-07T11:00:00+08:00", "open"),  # Saturday
        ("2026-03-08T11:00:00+08:00", "closed"),  # Sunday
        ("2026-10-02T11:00:00+08:00", "holiday"),
        ("2026-01-01T11:00:00+08:00", "holiday"),
        ("2026-10-10T17:00:00+08:00", "open"),  # a make-up working Saturday
    ],
)
def test_hours_routes_by_the_call_time_in_the_flows_time_zone(moment: str, node: str) -> None:
    decision = last(HOURS_FLOW, at(started(), moment))
    assert decision.state.node == node
    assert "office:" in decision.response.diagnostics.note


def test_hours_without_a_holiday_target_takes_closed_and_a_node_zone_wins() -> None:
    flow = make_flow(
        """
        start: office
        timezone: Asia/Shanghai
        defaults: {on_max_attempts: closed}
        nodes:
          office:
            type: hours
            timezone: America/New_York
            schedule: {mon-fri: "09:00-17:00"}
            holidays: ["2026-07-03"]
            open: open
            closed: closed
          open: {type: hangup, prompt: open}
          closed: {type: hangup, prompt: closed}
        """
    )
    assert last(flow, at(started(), "2026-07-03T10:00:00-04:00")).state.node == "closed"
    assert last(flow, at(started(), "2026-07-06T14:00:00+00:00")).state.node == "open"
    note = last(flow, at(started(), "2026-07-06T14:00:00+00:00")).response.diagnostics.note
    assert "open at Mon 2026-07-06 10:00 America/New_York" in note


def test_hours_uses_now_when_the_request_has_no_time_and_closed_when_there_is_none() -> None:
    open_now = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert decide(HOURS_FLOW, None, started(), now=open_now).state.node == "open"
    unknown = decide(HOURS_FLOW, None, started())
    assert unknown.state.node == "closed"
    assert "time is unknown" in unknown.response.diagnostics.note
    # occurred_at wins over now.
    request = at(started(), "2026-03-08T11:00:00+08:00")
    assert decide(HOURS_FLOW, None, request, now=open_now).state.node == "closed"


# -- fulfillment: a hook the service performs -----------------------------------------------------

FULFIL_FLOW = make_flow(
    """
    start: ask
    defaults: {on_max_attempts: sorry}
    nodes:
      ask: {type: collect, slot: phone, slot_type: mobile_cn, prompt: 请说手机号, next: checking}
      checking: {type: say, prompt: 正在查询, next: lookup}
      lookup:
        type: fulfillment
        url: http://127.0.0.1:9/balance
        timeout_ms: 250
        args: {purpose: balance, who: "{call.caller}"}
        slots: [balance]
        on_success: answer
        on_error: sorry
        on_timeout: slow
      answer: {type: say, prompt: "您的余额是{balance}元", next: menu}
      menu:
        type: menu
        prompt: 返回请按1
        choices: [{intent: back, key: "1", next: ask}]
      sorry: {type: hangup, prompt: 系统繁忙}
      slow: {type: hangup, prompt: 查询超时}
    """
)


def _pending(flow: Flow = FULFIL_FLOW) -> tuple[CallState, pb.DecideNextActionRequest, Decision]:
    state = last(flow, started()).state
    request = speech("幺三八 零零一三 八零零零")
    return state, request, decide(flow, state, request)


def test_a_fulfillment_stops_the_turn_with_the_call_to_make() -> None:
    _, _, pending = _pending()
    hook = pending.pending_hook
    assert hook is not None
    assert (hook.kind, hook.node, hook.url, hook.timeout_ms) == (
        FULFILLMENT,
        "lookup",
        "http://127.0.0.1:9/balance",
        250,
    )
    assert hook.idempotency_key == f"{CALL_ID}:req:lookup"
    assert hook.payload == {
        "kind": "fulfillment",
        "flow": {"id": "t", "version": "1"},
        "node": "lookup",
        "call": {
            "id": CALL_ID,
            "request_id": "req",
            "turn": 2,
            "caller": "+8613800138000",
            "callee": "10086",
        },
        "slots": {"phone": "13800138000"},
        "params": {},
        "args": {"purpose": "balance", "who": "+8613800138000"},
    }
    # Nothing to send or store yet.
    assert pending.response == pb.DecideNextActionResponse()


def test_success_merges_slots_and_params_and_carries_the_prompts_on() -> None:
    state, request, _ = _pending()
    ok = HookResult(Outcome.OK, {"slots": {"balance": 42.5}, "params": {"vip": "1"}})
    decision = resume(FULFIL_FLOW, state, request, [ok])
    assert decision.pending_hook is None
    assert decision.state.node == "menu"
    assert decision.state.slots == {"phone": "13800138000", "balance": "42.5"}
    assert decision.state.params == {"vip": "1"}
    assert spoken(decision) == ["正在查询", "您的余额是42.5元", "返回请按1"]
    assert "lookup: ok" in decision.response.diagnostics.note


@pytest.mark.parametrize(
    ("result", "node", "note"),
    [
        (HookResult(Outcome.ERROR, detail="HTTP 500"), "sorry", "lookup: failed (HTTP 500)"),
        (HookResult(Outcome.TIMEOUT, detail="no answer within 250 ms"), "slow", "timed out"),
        (
            HookResult(Outcome.OK, {"slots": ["not", "an", "object"]}),
            "sorry",
            "'slots' is not an object",
        ),
        (HookResult(Outcome.OK, {"slots": {"Bad Name": "1"}}), "sorry", "is not a slot name"),
        (HookResult(Outcome.OK, {"slots": {"x": "y" * 513}}), "sorry", "longer than 512"),
    ],
)
def test_errors_timeouts_and_malformed_answers_take_their_branches(
    result: HookResult, node: str, note: str
) -> None:
    state, request, _ = _pending()
    decision = resume(FULFIL_FLOW, state, request, [result])
    assert decision.state.node == node
    assert decision.state.slots == {"phone": "13800138000"}
    assert note in decision.response.diagnostics.note


def test_on_timeout_defaults_to_on_error() -> None:
    flow = make_flow(
        """
        start: lookup
        defaults: {on_max_attempts: bye}
        nodes:
          lookup: {type: fulfillment, url: "http://127.0.0.1:9/x", on_success: bye, on_error: sorry}
          bye: {type: hangup, prompt: 再见}
          sorry: {type: hangup, prompt: 抱歉}
        """
    )
    pending = decide(flow, None, started())
    assert pending.pending_hook is not None
    assert pending.pending_hook.timeout_ms == 300
    timed_out = resume(flow, None, started(), [HookResult(Outcome.TIMEOUT)])
    assert timed_out.state.node == "sorry"


def test_each_hook_of_a_turn_is_asked_for_in_turn_and_resumed_with_all_results() -> None:
    flow = make_flow(
        """
        start: first
        defaults: {on_max_attempts: bye}
        nodes:
          first: {type: fulfillment, url: "http://127.0.0.1:9/a", on_success: second, on_error: bye}
          second: {type: fulfillment, url: "http://127.0.0.1:9/b", on_success: bye, on_error: bye}
          bye: {type: hangup, prompt: "{a}{b}"}
        slots: [a, b]
        """
    )
    request = started()
    one = decide(flow, None, request)
    assert one.pending_hook is not None
    assert one.pending_hook.node == "first"
    results = [HookResult(Outcome.OK, {"slots": {"a": "A"}})]
    two = resume(flow, None, request, results)
    assert two.pending_hook is not None
    assert two.pending_hook.node == "second"
    # The second call sees what the first returned.
    assert two.pending_hook.payload["slots"] == {"a": "A"}
    results.append(HookResult(Outcome.OK, {"slots": {"b": "B"}}))
    done = resume(flow, None, request, results)
    assert done.pending_hook is None
    assert spoken(done) == ["AB"]


def test_repeat_after_a_fulfillment_replays_what_followed_without_calling_again() -> None:
    flow = make_flow(
        """
        start: ask
        defaults: {on_max_attempts: bye}
        commands: [{intent: repeat, keywords: [重复], repeat: true}]
        nodes:
          ask: {type: collect, slot: phone, slot_type: mobile_cn, prompt: 手机号, next: lookup}
          lookup:
            type: fulfillment
            url: http://127.0.0.1:9/balance
            slots: [balance]
            on_success: answer
            on_error: bye
          answer: {type: say, prompt: "余额{balance}元", next: menu}
          menu: {type: menu, prompt: 返回请按1, choices: [{intent: back, key: "1", next: ask}]}
          bye: {type: hangup, prompt: 再见}
        """
    )
    state = last(flow, started()).state
    request = speech("13800138000")
    answered = resume(flow, state, request, [HookResult(Outcome.OK, {"slots": {"balance": "8"}})])
    assert answered.state.entry == "answer"
    repeated = decide(flow, answered.state, speech("重复"))
    assert repeated.pending_hook is None
    assert spoken(repeated) == ["余额8元", "返回请按1"]


def test_a_pending_decision_changes_nothing_and_the_turn_is_deterministic() -> None:
    state, request, pending = _pending()
    again = decide(FULFIL_FLOW, state, request)
    assert again.pending_hook == pending.pending_hook
    ok = [HookResult(Outcome.OK, {"slots": {"balance": "1"}})]
    first = resume(FULFIL_FLOW, state, request, ok)
    second = resume(FULFIL_FLOW, state, request, ok)
    assert first.state == second.state
    assert first.response == second.response
    assert action(first) == "play_and_listen"


def test_walks_without_hooks_are_unchanged_by_hook_support() -> None:
    decisions = walk(SET_FLOW, started())
    assert all(d.pending_hook is None for d in decisions)


def test_the_calls_local_date_and_time_are_template_values_and_condition_names() -> None:
    flow = make_flow(
        """
        start: check
        timezone: Asia/Shanghai
        defaults: {on_max_attempts: late}
        nodes:
          check:
            type: branch
            cases:
              - {when: {call.time: {lt: "12:00"}}, next: morning}
            default: late
          morning: {type: hangup, prompt: "上午好，今天是{call.date}，现在{call.time}"}
          late: {type: hangup, prompt: "下午好{call.date}"}
        """
    )
    morning = last(flow, at(started(), "2026-03-04T01:05:00+00:00"))
    assert spoken(morning) == ["上午好，今天是2026-03-04，现在09:05"]
    assert spoken(last(flow, at(started(), "2026-03-04T17:00:00+00:00"))) == [
        "上午好，今天是2026-03-05，现在01:00"
    ]
    assert spoken(last(flow, started())) == ["下午好"]  # no call time: empty, and no branch
