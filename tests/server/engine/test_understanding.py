"""Understanding at menus and collects in the pure engine: patterns, synonyms, fuzzy matching
with its threshold, explained ties, and the external understanding (NLU) hook with its fallback
to the built-in matchers."""

from __future__ import annotations

import pytest

from server.engine.flow import Flow
from server.engine.hooks import NLU, HookResult, Outcome
from server.engine.interpreter import decide, resume
from server.engine.state import CallState
from tests.server.engine.test_interpreter import keys, last, make_flow, speech, started

MENU = """
start: main
defaults: {{on_max_attempts: bye{defaults}}}
{top}
commands:
  - {{intent: agent, keywords: [人工, operator], patterns: ["找.{{0,2}}人工"], key: "0", goto: agent}}
nodes:
  main:
    type: menu
    prompt: 请选择
{node}
    choices:
      - {{intent: bill, key: "1", keywords: [话费, billing], patterns: ["查.{{0,6}}账单"], next: bill}}
      - {{intent: data, key: "2", keywords: [流量, data plan], next: data}}
      - {{intent: pay, keywords: [缴费, bill payment], next: pay}}
  bill: {{type: hangup, prompt: 话费}}
  data: {{type: hangup, prompt: 流量}}
  pay: {{type: hangup, prompt: 缴费}}
  agent: {{type: hangup, prompt: 人工}}
  bye: {{type: hangup, prompt: 再见}}
"""


def menu_flow(*, top: str = "", node: str = "", defaults: str = "") -> Flow:
    return make_flow(MENU.format(top=top, node=node, defaults=defaults))


@pytest.mark.parametrize(
    ("said", "node", "note"),
    [
        ("我想查一下上个月的账单", "bill", "pattern '查.{0,6}账单' on '查一下上个月的账单'"),
        ("帮我找个人工", "agent", "global command 'agent'"),
        ("I want to check my biling", "bill", "fuzzy 'biling'~'billing' 92.3"),
        (
            "get me an operater",
            "agent",
            "global command 'agent' (fuzzy 'operater'~'operator' 87.5)",
        ),
        ("data plann please", "data", "fuzzy"),
        ("bill payment", "pay", "keyword 'bill payment'"),
    ],
)
def test_menu_understands_patterns_and_fuzzy_variants(said: str, node: str, note: str) -> None:
    decision = last(menu_flow(), started(), speech(said))
    assert decision.state.node == node
    assert note in decision.response.diagnostics.note


def test_fuzzy_matching_can_be_turned_off_per_flow_or_node() -> None:
    for flow in (
        menu_flow(defaults=", fuzzy_threshold: 0"),
        menu_flow(node="    fuzzy_threshold: 0"),
    ):
        decision = last(flow, started(), speech("I want to check my biling"))
        assert decision.state.node == "main"
        assert "no-match 1 of 3" in decision.response.diagnostics.note


def test_a_strict_threshold_turns_a_weak_fuzzy_match_into_a_no_match() -> None:
    flow = menu_flow(node="    fuzzy_threshold: 95")
    assert last(flow, started(), speech("check my biling")).state.node == "main"
    assert last(menu_flow(), started(), speech("check my biling")).state.node == "bill"


def test_ties_go_to_the_earlier_choice_and_are_explained() -> None:
    decision = last(menu_flow(), started(), speech("话费和流量"))
    assert decision.state.node == "bill"
    note = decision.response.diagnostics.note
    assert "chose 'bill' by voice (keyword '话费')" in note
    assert "tied with 'data' (keyword '流量'): the one listed first wins" in note


def test_negated_choices_still_do_not_count() -> None:
    assert last(menu_flow(), started(), speech("不要查话费，流量")).state.node == "data"
    assert last(menu_flow(), started(), speech("不要人工，查话费")).state.node == "bill"


SYNONYMS = """
synonyms:
  话费: [电话费, 手机费]
  data plan: [mobile data, internet]
"""


@pytest.mark.parametrize(("said", "node"), [("查手机费", "bill"), ("my internet", "data")])
def test_synonyms_widen_every_keyword_of_their_group(said: str, node: str) -> None:
    assert last(menu_flow(top=SYNONYMS), started(), speech(said)).state.node == node


def test_synonyms_become_recogniser_hints() -> None:
    listen = last(menu_flow(top=SYNONYMS), started()).response.play_and_listen
    assert list(listen.speech.hints) == [
        "话费", "billing", "电话费", "手机费", "流量", "data plan", "mobile data", "internet",
        "缴费", "bill payment",
    ]  # fmt: skip


def test_a_fuzzy_command_at_a_collect_only_when_the_answer_is_rejected() -> None:
    flow = make_flow(
        """
        start: ask
        defaults: {on_max_attempts: bye}
        commands: [{intent: agent, keywords: [operator], goto: agent}]
        nodes:
          ask: {type: collect, slot: n, slot_type: integer, prompt: "How many?", next: bye}
          agent: {type: hangup, prompt: agent}
          bye: {type: hangup, prompt: bye}
        """
    )
    assert last(flow, started(), speech("operater please")).state.node == "agent"
    assert last(flow, started(), speech("twelve")).state.slots == {"n": "12"}


# -- the NLU hook ---------------------------------------------------------------------------------

NLU_TOP = "nlu: {url: 'http://127.0.0.1:9/nlu', timeout_ms: 200, min_confidence: 0.6}"


def _nlu(flow: Flow, said: str, result: HookResult) -> tuple[CallState, HookResult, CallState, str]:
    state = last(flow, started()).state
    request = speech(said)
    pending = decide(flow, state, request)
    assert pending.pending_hook is not None
    done = resume(flow, state, request, [result])
    return state, result, done.state, done.response.diagnostics.note


def test_speech_at_a_menu_asks_the_nlu_first_with_what_the_node_expects() -> None:
    flow = menu_flow(top=NLU_TOP)
    state = last(flow, started()).state
    pending = decide(flow, state, speech("我想问问这个月花了多少"))
    hook = pending.pending_hook
    assert hook is not None
    assert (hook.kind, hook.url, hook.timeout_ms, hook.node) == (
        NLU,
        "http://127.0.0.1:9/nlu",
        200,
        "main",
    )
    assert hook.payload["text"] == "我想问问这个月花了多少"
    assert hook.payload["language"] == "zh-CN"
    assert hook.payload["expected"] == {"intents": ["bill", "data", "pay", "agent"]}
    assert hook.payload["flow"] == {"id": "t", "version": "1"}


@pytest.mark.parametrize(
    ("body", "node", "slots", "note"),
    [
        (
            {"intent": "bill", "confidence": 0.9, "slots": {"month": "2026-03"}},
            "bill",
            {"month": "2026-03"},
            "chose 'bill' by nlu 0.9",
        ),
        ({"intent": "agent", "confidence": 0.8}, "agent", {}, "global command 'agent' (nlu 0.8)"),
    ],
)
def test_a_confident_nlu_intent_picks_the_choice_or_command(
    body: dict[str, object], node: str, slots: dict[str, str], note: str
) -> None:
    _, _, state, said_note = _nlu(menu_flow(top=NLU_TOP), "随便说点", HookResult(Outcome.OK, body))
    assert state.node == node
    assert state.slots == slots
    assert note in said_note


@pytest.mark.parametrize(
    ("result", "note"),
    [
        (HookResult(Outcome.TIMEOUT, detail="no answer within 200 ms"), "nlu failed (no answer"),
        (HookResult(Outcome.ERROR, detail="HTTP 500"), "nlu failed (HTTP 500)"),
        (HookResult(Outcome.OK, {"intent": 7}), "nlu failed ('intent' is not text)"),
        (HookResult(Outcome.OK, {"intent": "data", "confidence": 0.3}), "below 0.6"),
        (HookResult(Outcome.OK, {"intent": "weather", "confidence": 0.99}), "not offered here"),
    ],
)
def test_without_a_usable_nlu_answer_the_built_in_matchers_decide(
    result: HookResult, note: str
) -> None:
    _, _, state, said_note = _nlu(menu_flow(top=NLU_TOP), "我要查话费", result)
    assert state.node == "bill"
    assert note in said_note
    assert "chose 'bill' by voice (keyword '话费')" in said_note


def test_keys_and_exact_commands_never_ask_the_nlu() -> None:
    flow = menu_flow(top=NLU_TOP)
    state = last(flow, started()).state
    assert decide(flow, state, keys("1")).pending_hook is None
    assert decide(flow, state, speech("转人工")).state.node == "agent"


def test_a_node_can_opt_out_of_the_nlu() -> None:
    flow = menu_flow(top=NLU_TOP, node="    nlu: false")
    state = last(flow, started()).state
    decision = decide(flow, state, speech("我要查话费"))
    assert decision.pending_hook is None
    assert decision.state.node == "bill"


COLLECT_NLU = make_flow(
    f"""
    start: ask
    {NLU_TOP}
    defaults: {{on_max_attempts: bye}}
    nodes:
      ask: {{type: collect, slot: phone, slot_type: mobile_cn, prompt: 手机号, next: bye}}
      bye: {{type: hangup, prompt: "{{phone}}"}}
    """
)


def test_at_a_collect_the_nlu_slot_value_is_validated_like_an_answer() -> None:
    state = last(COLLECT_NLU, started()).state
    request = speech("我的号码是那个一三八零零一三八零零零")
    pending = decide(COLLECT_NLU, state, request)
    assert pending.pending_hook is not None
    assert pending.pending_hook.payload["expected"] == {
        "intents": [],
        "slot": "phone",
        "slot_type": "mobile_cn",
    }
    good = HookResult(Outcome.OK, {"intent": "", "slots": {"phone": "+86 13800138000"}})
    done = resume(COLLECT_NLU, state, request, [good])
    assert done.state.slots == {"phone": "13800138000"}
    assert "phone collected (by nlu 1)" in done.response.diagnostics.note


def test_a_rejected_nlu_slot_value_falls_back_to_reading_the_words() -> None:
    state = last(COLLECT_NLU, started()).state
    request = speech("幺三八 零零一三 八零零零")
    bad = HookResult(Outcome.OK, {"slots": {"phone": "123"}, "confidence": 0.9})
    done = resume(COLLECT_NLU, state, request, [bad])
    assert done.state.slots == {"phone": "13800138000"}
    assert "nlu value '123' rejected" in done.response.diagnostics.note
