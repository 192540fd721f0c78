"""Reading a flow of several languages: `languages:`, prompts and keywords keyed by language,
and the file:line errors for each mistake (issue 17)."""

from __future__ import annotations

import textwrap

import pytest

from server.engine.flow import Collect, Menu, PromptItem, Say
from server.engine.flowfile import FlowError, parse_flow, parse_subflows

_TOP = """\
flow: demo
version: "1"
{language}
start: menu
defaults:
  on_max_attempts: bye
commands:
  - intent: agent
    keywords: {{zh-CN: [人工], en-US: [agent, operator]}}
    goto: bye
nodes:
"""
_NODES = """\
menu:
  type: menu
  prompt:
    zh-CN:
      - 请选择。
      - {tts: "For English, press 9.", language: en-US}
    en-US: Please choose.
  choices:
    - {intent: bill, key: "1", keywords: {zh-CN: [话费], en-US: [bill]}, next: pick}
    - {intent: english, key: "9", keywords: [English, 英文], language: en-US, next: menu}
pick:
  type: collect
  slot: size
  slot_type: choice
  options:
    - {value: large, keywords: {zh-CN: [大杯], en-US: [large]}}
  prompt: {zh-CN: 要多大的？, en-US: "Which size?"}
  confirm: {zh-CN: "是{size}吗？", en-US: "{size}, right?"}
  next: bye
bye:
  type: hangup
  prompt: {zh-CN: 再见。, en-US: Goodbye.}
"""


def _text(language: str = "languages: [zh-CN, en-US]", nodes: str = _NODES) -> str:
    return _TOP.format(language=language) + textwrap.indent(nodes, "  ")


def _problems(text: str) -> list[str]:
    with pytest.raises(FlowError) as raised:
        parse_flow(text, "demo.yaml")
    return [f"{p.line}: {p.where}: {p.message}" for p in raised.value.problems]


def test_languages_is_accepted_and_read_into_the_model() -> None:
    # Issue 17 bug 5: `languages:` was refused as an unknown field.
    flow = parse_flow(_text(), "demo.yaml")
    assert flow.languages == ("zh-CN", "en-US")
    assert flow.language == "zh-CN"
    menu = flow.nodes["menu"]
    assert isinstance(menu, Menu)
    assert menu.prompt.items == (
        PromptItem(text="请选择。", language="zh-CN", heard_in="zh-CN"),
        PromptItem(text="For English, press 9.", language="en-US", heard_in="zh-CN"),
        PromptItem(text="Please choose.", language="en-US", heard_in="en-US"),
    )
    bill, english = menu.choices
    assert bill.keywords == ("话费", "bill")
    assert bill.keywords_by_language == (("zh-CN", ("话费",)), ("en-US", ("bill",)))
    assert (english.keywords, english.keywords_by_language) == (("English", "英文"), ())
    assert english.language == "en-US"
    assert flow.commands[0].keywords_by_language == (
        ("zh-CN", ("人工",)),
        ("en-US", ("agent", "operator")),
    )
    pick = flow.nodes["pick"]
    assert isinstance(pick, Collect)
    assert pick.confirm is not None
    assert [item.language for item in pick.confirm.items] == ["zh-CN", "en-US"]
    assert pick.options[0].keywords_by_language == (("zh-CN", ("大杯",)), ("en-US", ("large",)))


def test_bare_languages_may_be_declared_and_key_prompts() -> None:
    text = _text("languages: [zh, en]").replace("zh-CN", "zh").replace("en-US", "en")
    flow = parse_flow(text, "demo.yaml")
    assert (flow.language, flow.languages) == ("zh", ("zh", "en"))
    bye = flow.nodes["bye"]
    assert [item.language for item in bye.prompt.items] == ["zh", "en"]  # type: ignore[union-attr]


def test_language_given_too_must_be_the_first_of_languages() -> None:
    both = "language: zh-CN\nlanguages: [zh-CN, en-US]"
    assert parse_flow(_text(both), "demo.yaml").languages == ("zh-CN", "en-US")
    assert _problems(_text("language: en-US\nlanguages: [zh-CN, en-US]")) == [
        "3: flow.language: 'en-US' is not the first of languages (zh-CN, en-US); "
        "expected language: zh-CN, or leave 'language' out"
    ]


@pytest.mark.parametrize(
    ("languages", "expected"),
    [
        (
            "languages: [zh-CN, english]",
            "3: flow.languages: got str 'english', expected a BCP-47 language such as zh-CN or en-US",
        ),
        (
            "languages: [zh-CN, tts]",
            "3: flow.languages: got str 'tts', expected a BCP-47 language such as zh-CN or en-US",
        ),
        ("languages: [zh-CN, zh-CN, en-US]", "3: flow.languages: 'zh-CN' is listed twice"),
        ("languages: []", "3: flow.languages: no languages (expected at least one"),
        ("languages: zh-CN", "3: flow.languages: got str 'zh-CN', expected a list"),
    ],
)
def test_bad_languages_are_errors_at_their_line(languages: str, expected: str) -> None:
    problems = _problems(_text(languages))
    assert any(problem.startswith(expected) for problem in problems), problems


def test_a_key_that_is_not_a_declared_language_is_an_error_at_its_line() -> None:
    nodes = _NODES.replace("en-US: Please choose.", "fr-FR: Choisissez.").replace(
        "keywords: {zh-CN: [话费], en-US: [bill]}", "keywords: {zh-CN: [话费], ja-JP: [bill]}"
    )
    nodes = nodes.replace("language: en-US, next: menu", "language: de-DE, next: menu")
    assert sorted(_problems(_text(nodes=nodes))) == [
        "18: node 'menu'.prompt: unknown language 'fr-FR' (expected one of: zh-CN, en-US)",
        "20: node 'menu'.choices[0].keywords: unknown language 'ja-JP' (expected one of: "
        "zh-CN, en-US)",
        "21: node 'menu'.choices[1]: unknown language 'de-DE' (expected one of: zh-CN, en-US)",
    ]


def test_a_one_language_flow_may_key_by_its_own_language_only() -> None:
    one = _text("language: zh-CN")
    problems = _problems(one)
    assert len(problems) == 8  # every en-US key, each at its line
    assert problems[-1] == (
        "9: commands[0].keywords: unknown language 'en-US' (expected one of: zh-CN; a flow "
        "speaking more languages declares them: languages: [zh-CN, …])"
    )
    only_zh = parse_flow(
        _TOP.format(language="language: zh-CN").replace(", en-US: [agent, operator]", "")
        + "  menu: {type: menu, prompt: {zh-CN: 请选择。}, choices: [{intent: a, key: '1', next: bye}]}\n"
        + "  bye: {type: hangup, prompt: 再见。}\n",
        "demo.yaml",
    )
    assert only_zh.languages == ()
    menu = only_zh.nodes["menu"]
    assert isinstance(menu, Menu)
    assert menu.prompt.items == (PromptItem(text="请选择。", language="zh-CN", heard_in="zh-CN"),)


def test_an_item_language_must_be_declared_in_the_list_form() -> None:
    nodes = _NODES.replace(
        "en-US: Goodbye.", "en-US: [Goodbye., {tts: Au revoir., language: fr-FR}]"
    )
    nodes += "lost:\n  type: say\n  prompt: [再见。, {tts: Adieu., language: fr-FR}]\n  next: bye\n"
    problems = _problems(_text(nodes=nodes))
    # Under a language key an item's own language is only how it is spoken: allowed.
    assert problems == [
        "36: node 'lost'.prompt[1].language: unknown language 'fr-FR' (expected one of: zh-CN, en-US)"
    ]


def test_barge_in_goes_around_the_languages() -> None:
    inside = _NODES.replace("en-US: Goodbye.", "en-US: {items: Goodbye., barge_in: none}")
    assert _problems(_text(nodes=inside)) == [
        "33: node 'bye'.prompt.en-US: barge_in and min_speech_ms apply to the whole prompt "
        "(expected them around the languages: {items: {zh-CN: …, en-US: …}, barge_in: …})"
    ]
    around = _NODES.replace(
        "prompt: {zh-CN: 再见。, en-US: Goodbye.}",
        "prompt: {items: {zh-CN: 再见。, en-US: Goodbye.}, barge_in: none}",
    )
    bye = parse_flow(_text(nodes=around), "demo.yaml").nodes["bye"]
    assert [item.language for item in bye.prompt.items] == ["zh-CN", "en-US"]  # type: ignore[union-attr]


def test_keywords_of_a_language_must_be_a_list() -> None:
    nodes = _NODES.replace("en-US: [bill]", "en-US: bill")
    assert _problems(_text(nodes=nodes)) == [
        "20: node 'menu'.choices[0].keywords.en-US: got str 'bill', expected a list"
    ]


def test_a_subflow_accepts_any_well_formed_language_key() -> None:
    subflows = parse_subflows(
        {
            "ask.yaml": textwrap.dedent("""\
                subflow: ask
                start: hello
                nodes:
                  hello:
                    type: say
                    prompt: {zh-CN: 您好, en-US: Hello}
                    next: done
                  done: {type: return, outcome: done}
            """)
        }
    )
    hello = subflows["ask"].nodes["hello"]
    assert isinstance(hello, Say)
    assert [item.language for item in hello.prompt.items] == ["zh-CN", "en-US"]
