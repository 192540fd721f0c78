"""One flow, several languages (issue 17): the pure helpers of `languages`, and what the
interpreter does with them — which items play, what is recognised, when the call switches."""

from __future__ import annotations

import textwrap

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from server.engine import languages
from server.engine.flow import Choice, Flow, PromptItem, PromptSpec
from server.engine.flowfile import parse_flow, parse_subflows
from server.engine.hooks import NLU
from server.engine.interpreter import Decision, decide
from server.engine.state import decode, encode
from tests.server.engine.test_interpreter import (
    CALLER,
    action,
    keys,
    make_request,
    prompts_of,
    speech,
    spoken,
    started,
    walk,
)

_FLOW = """\
flow: bi
version: "1"
languages: [zh-CN, en-US]
start: menu
defaults:
  on_max_attempts: bye
  no_match:
    - {zh-CN: 没听懂。, en-US: "Sorry?"}
commands:
  - intent: agent
    keywords: {zh-CN: [人工], en-US: [agent, operator]}
    goto: agent
nodes:
  menu:
    type: menu
    prompt:
      zh-CN: [请选择。, {tts: "For English, press 9.", language: en-US}]
      en-US: [Please choose., {tts: 中文请按8。, language: zh-CN}]
    choices:
      - {intent: bill, key: "1", keywords: {zh-CN: [话费], en-US: [bill]}, next: size}
      - {intent: english, key: "9", keywords: [English, 英文], language: en-US, next: menu}
      - {intent: chinese, key: "8", keywords: {en-US: [Chinese]}, language: zh-CN, next: menu}
  size:
    type: collect
    slot: size
    slot_type: choice
    options:
      - {value: large, key: "1", keywords: {zh-CN: [大杯], en-US: [large]}}
      - {value: small, key: "2", keywords: {zh-CN: [小杯], en-US: [small]}}
    prompt: {zh-CN: 要多大的？, en-US: "Which size?"}
    confirm: {zh-CN: "是{size}吗？", en-US: "{size}, right?"}
    next: only_zh
  only_zh:
    type: say
    prompt: 好的。
    next: bye
  agent:
    type: transfer
    prompt: {zh-CN: 转人工。, en-US: Transferring.}
    target: {skill_queue: "1"}
    on_failure: bye
  bye:
    type: hangup
    prompt: {zh-CN: 再见。, en-US: Goodbye.}
"""


@pytest.fixture(scope="module")
def flow() -> Flow:
    return parse_flow(_FLOW, "bi.yaml")


def _heard(text: str, language: str) -> pb.DecideNextActionRequest:
    return make_request("speech_recognized", pb.SpeechRecognized(text=text, language=language))


def _languages_of(decision: Decision) -> list[str]:
    return [item.tts.language for item in prompts_of(decision).items]


def _listening_language(decision: Decision) -> str:
    return decision.response.play_and_listen.speech.language


# -- the pure helpers -------------------------------------------------------------------------


def test_order_puts_the_calls_language_first(flow: Flow) -> None:
    assert languages.order(flow, "") == ("zh-CN", "en-US")
    assert languages.order(flow, "en-US") == ("en-US", "zh-CN")


@pytest.mark.parametrize(
    ("tag", "expected"),
    [("en-US", "en-US"), ("EN-us", "en-US"), ("en", "en-US"), ("en-GB", "en-US"),
     ("zh", "zh-CN"), ("fr-FR", ""), ("", "")],
)  # fmt: skip
def test_a_platforms_tag_names_a_declared_language(flow: Flow, tag: str, expected: str) -> None:
    assert languages.declared(flow, tag) == expected


def test_items_of_the_calls_language_else_the_defaults_else_all(flow: Flow) -> None:
    zh = PromptItem(text="您好", language="zh-CN")
    en = PromptItem(text="Hello", language="en-US")
    press = PromptItem(text="For English, press 9", language="en-US", heard_in="zh-CN")
    untagged = PromptItem(text="欢迎")
    spec = PromptSpec((zh, press, en, untagged))
    assert languages.items(flow, spec, "") == (zh, press, untagged)
    assert languages.items(flow, spec, "en-US") == (en,)
    assert languages.items(flow, PromptSpec((zh,)), "en-US") == (zh,)
    french = PromptItem(text="Bonjour", language="fr-FR")
    assert languages.items(flow, PromptSpec((french,)), "en-US") == (french,)


def test_keywords_in_a_language_and_lists_in_the_first_only() -> None:
    mapped = Choice("bill", "x", keywords=("话费", "bill"),
                    keywords_by_language=(("zh-CN", ("话费",)), ("en-US", ("bill",))))  # fmt: skip
    plain = Choice("english", "x", keywords=("English", "英文"))
    assert languages.keywords_in(mapped, "en-US", first=False) == ("bill",)
    assert languages.keywords_in(mapped, "fr-FR", first=True) == ()
    assert languages.keywords_in(plain, "en-US", first=True) == ("English", "英文")
    assert languages.keywords_in(plain, "en-US", first=False) == ()


# -- the call's language at run time -------------------------------------------------------------


def test_a_call_starts_in_the_default_language_and_is_recognised_in_it(flow: Flow) -> None:
    first = decide(flow, None, started())
    assert spoken(first) == ["请选择。", "For English, press 9."]
    assert _languages_of(first) == ["zh-CN", "en-US"]
    assert _listening_language(first) == "zh-CN"
    assert list(first.response.play_and_listen.speech.hints) == ["话费", "English", "英文"]
    assert first.state.language == ""


def test_a_choice_with_a_language_switches_the_call_by_key(flow: Flow) -> None:
    switched = walk(flow, started(), keys("9"))[-1]
    assert switched.state.language == "en-US"
    assert spoken(switched) == ["Please choose.", "中文请按8。"]
    assert _languages_of(switched) == ["en-US", "zh-CN"]
    assert _listening_language(switched) == "en-US"
    assert list(switched.response.play_and_listen.speech.hints) == [
        "bill",
        "English",
        "英文",
        "Chinese",
    ]
    assert "language en-US (chose 'english')" in switched.response.diagnostics.note
    # The language is stored with the call, and the default is stored as "".
    assert decode(encode(switched.state)).language == "en-US"
    back = walk(flow, started(), keys("9"), keys("8"))[-1]
    assert back.state.language == ""
    assert spoken(back) == ["请选择。", "For English, press 9."]


def test_a_keyword_of_another_language_switches_the_call(flow: Flow) -> None:
    decisions = walk(flow, started(), speech("I want my bill"), speech("large please"))
    asked, confirming = decisions[1], decisions[2]
    assert asked.state.node == "size"
    assert spoken(asked) == ["Which size?"]
    assert _listening_language(asked) == "en-US"
    assert "language en-US (said keyword 'bill')" in asked.response.diagnostics.note
    assert spoken(confirming) == ["large, right?"]
    # In the call's own language nothing switches.
    stays = walk(flow, started(), speech("我想查话费"))[-1]
    assert (stays.state.language, spoken(stays)) == ("", ["要多大的？"])


def test_a_choice_slot_option_of_another_language_switches_the_call(flow: Flow) -> None:
    decisions = walk(flow, started(), keys("1"), speech("small"))
    assert decisions[-1].state.slots["size"] == "small"
    assert decisions[-1].state.language == "en-US"
    assert spoken(decisions[-1]) == ["small, right?"]


def test_a_global_command_of_another_language_switches_the_call(flow: Flow) -> None:
    transferred = walk(flow, started(), speech("operator"))[-1]
    assert action(transferred) == "play_and_transfer"
    assert spoken(transferred) == ["Transferring."]
    assert transferred.state.language == "en-US"


def test_the_platforms_language_counts_even_without_a_match(flow: Flow) -> None:
    reprompt = walk(flow, started(), _heard("hmm", "en-us"))[-1]
    assert reprompt.state.language == "en-US"
    assert spoken(reprompt) == ["Sorry?", "Please choose.", "中文请按8。"]
    assert "language en-US (recognised by the platform)" in reprompt.response.diagnostics.note
    # A language the flow does not declare changes nothing.
    ignored = walk(flow, started(), _heard("hmm", "fr-FR"))[-1]
    assert (ignored.state.language, spoken(ignored)[0]) == ("", "没听懂。")


def test_precedence_choice_then_words_then_platform(flow: Flow) -> None:
    # The platform says Chinese, the words are English: the words win.
    words = walk(flow, started(), _heard("bill", "zh-CN"))[-1]
    assert words.state.language == "en-US"
    # "Chinese" is an English keyword of a choice that switches to Chinese: the choice wins.
    choice = walk(flow, started(), keys("9"), _heard("Chinese", "en-US"))[-1]
    assert choice.state.language == ""
    assert spoken(choice)[0] == "请选择。"


def test_a_prompt_without_the_calls_language_plays_the_defaults(flow: Flow) -> None:
    decisions = walk(flow, started(), keys("9"), keys("1"), keys("1"), keys("1"))
    assert decisions[-1].state.node == "bye"
    assert spoken(decisions[-1]) == ["好的。", "Goodbye."]


def test_a_flow_of_one_language_plays_every_item_as_before() -> None:
    one = parse_flow(
        textwrap.dedent("""\
            flow: one
            version: "1"
            language: zh-CN
            start: bye
            defaults: {on_max_attempts: bye}
            nodes:
              bye:
                type: hangup
                prompt: [再见。, {tts: Goodbye., language: en-US}]
        """),
        "one.yaml",
    )
    bye = decide(one, None, started())
    assert spoken(bye) == ["再见。", "Goodbye."]
    assert _languages_of(bye) == ["zh-CN", "en-US"]
    assert bye.state.language == ""


def test_ai_gather_assistant_and_nlu_follow_the_calls_language() -> None:
    text = textwrap.dedent("""\
        flow: ai
        version: "1"
        languages: [zh-CN, en-US]
        start: menu
        nlu: {url: "http://127.0.0.1:9/nlu"}
        defaults: {on_max_attempts: bye}
        nodes:
          menu:
            type: menu
            nlu: false
            prompt: {zh-CN: 请选择。, en-US: Please choose.}
            choices:
              - {intent: english, key: "9", language: en-US, next: ask}
              - {intent: helper, key: "2", language: en-US, next: helper}
          ask:
            type: collect
            slot: words
            slot_type: text
            prompt: {zh-CN: 请说。, en-US: Go ahead.}
            next: gather
          gather:
            type: ai_gather
            greeting: Hello
            schema: {type: object, properties: {topic: {type: string}}}
            next: bye
            on_failure: bye
          helper:
            type: assistant
            assistant_id: a-1
            greeting: {zh-CN: 您好。, en-US: Hi there.}
            next: bye
            on_unavailable: bye
          bye: {type: hangup, prompt: {zh-CN: 再见。, en-US: Goodbye.}}
    """)
    flow = parse_flow(text, "ai.yaml")
    state = walk(flow, started(), keys("9"))[-1].state
    pending = decide(flow, state, speech("hello there"))
    assert pending.pending_hook is not None
    assert pending.pending_hook.kind == NLU
    assert pending.pending_hook.payload["language"] == "en-US"
    gather = walk(flow, started(), keys("9"), keys("1"))[-1]
    assert action(gather) == "ai_gather"
    assert gather.response.ai_gather.language == "en-US"
    requests = [started(), keys("2")]
    for request in requests:
        request.call.capabilities.append(pb.CAPABILITY_VOICE_ASSISTANT)
    handed = walk(flow, *requests)[-1]
    assert action(handed) == "hand_to_assistant"
    assert handed.response.hand_to_assistant.language == "en-US"
    assert handed.response.hand_to_assistant.greeting == "Hi there."


def test_voice_and_ai_gather_greeting_may_be_given_per_language() -> None:
    text = textwrap.dedent("""\
        flow: voices
        version: "1"
        languages: [zh-CN, en-US]
        voice: {zh-CN: xiaoyun, en-US: emily}
        start: menu
        defaults: {on_max_attempts: bye}
        nodes:
          menu:
            type: menu
            prompt: {zh-CN: [请选择。, {tts: "For English, press 9.", language: en-US}]}
            choices:
              - {intent: english, key: "9", language: en-US, next: gather}
              - {intent: chinese, key: "1", next: gather}
          gather:
            type: ai_gather
            greeting: {zh-CN: 您好，请讲。, en-US: "Hello {call.caller}, go ahead."}
            schema: {type: object, properties: {topic: {type: string}}}
            next: bye
            on_failure: bye
          bye: {type: hangup, prompt: {zh-CN: 再见。, en-US: Goodbye.}}
    """)
    flow = parse_flow(text, "voices.yaml")
    assert (flow.voice, flow.voices) == ("xiaoyun", (("zh-CN", "xiaoyun"), ("en-US", "emily")))
    first = decide(flow, None, started())
    assert [item.tts.voice for item in prompts_of(first).items] == ["xiaoyun", "emily"]
    english = walk(flow, started(), keys("9"))[-1].response.ai_gather
    assert (english.greeting, english.language, english.voice) == (
        f"Hello {CALLER}, go ahead.",
        "en-US",
        "emily",
    )
    chinese = walk(flow, started(), keys("1"))[-1].response.ai_gather
    assert (chinese.greeting, chinese.language, chinese.voice) == (
        "您好，请讲。",
        "zh-CN",
        "xiaoyun",
    )


def test_a_subflow_keyed_by_language_serves_flows_of_either_language() -> None:
    library = parse_subflows(
        {
            "greet.yaml": textwrap.dedent("""\
                subflow: greet
                start: hello
                nodes:
                  hello:
                    type: say
                    prompt: {zh-CN: 您好。, en-US: Hello.}
                    next: done
                  done: {type: return}
            """)
        }
    )
    body = textwrap.dedent("""\
        start: greeting
        defaults: {on_max_attempts: bye}
        nodes:
          greeting: {type: subflow, flow: greet, next: bye}
          bye: {type: hangup, prompt: "{bye}"}
    """)
    heard = {}
    for language, bye in (("en-US", "Goodbye."), ("zh-CN", "再见。")):
        text = f'flow: f\nversion: "1"\nlanguage: {language}\n' + body.replace("{bye}", bye)
        heard[language] = spoken(decide(parse_flow(text, "f.yaml", library), None, started()))
    assert heard == {"en-US": ["Hello.", "Goodbye."], "zh-CN": ["您好。", "再见。"]}
