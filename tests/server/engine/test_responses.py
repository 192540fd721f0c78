"""Response parts built once per flow (`responses.once`, `responses.prompts`): shared by every
call, never changed by one, and rebuilt for each call where a template takes its values."""

from __future__ import annotations

import textwrap
from dataclasses import replace

from dialogue.v1 import dialogue_pb2 as pb
from server.engine import responses
from server.engine.flow import Flow, PromptItem, PromptSpec
from server.engine.flowfile import parse_flow
from server.engine.interpreter import decide

FLOW = """\
    flow: t
    version: "1"
    language: zh-CN
    voice: xiaoyun
    start: ask
    defaults:
      on_max_attempts: bye
    nodes:
      ask:
        type: collect
        slot: name
        slot_type: text
        prompt: 请说您的名字。
        next: greet
      greet:
        type: say
        prompt: 您好，{name}。
        next: bye
      bye:
        type: hangup
        prompt: 再见。
"""


def _flow() -> Flow:
    return parse_flow(textwrap.dedent(FLOW), "inline.yaml")


def _request(call_id: str, event: str, **payload: object) -> pb.DecideNextActionRequest:
    request = pb.DecideNextActionRequest(request_id=f"{call_id}-{event}", **{event: payload})  # type: ignore[arg-type]
    request.call.call_id = call_id
    return request


def _render(text: str) -> tuple[str, dict[str, str]]:
    """A render that fills every placeholder with "x" (as the turn's own would, with a value)."""
    values = {"name": "x"} if "{name}" in text else {}
    return text.replace("{name}", "x"), values


def _texts(prompts: pb.Prompts) -> list[str]:
    return [item.tts.text for item in prompts.items]


def test_prompts_without_placeholders_are_built_once_per_flow() -> None:
    flow = _flow()
    spec = PromptSpec((PromptItem("请说您的名字。"),))

    first = responses.prompts(flow, [spec], _render)
    second = responses.prompts(flow, [spec], _render)

    assert second is first
    assert _texts(first) == ["请说您的名字。"]


def test_prompts_with_placeholders_are_rendered_for_each_call() -> None:
    flow = _flow()
    spec = PromptSpec((PromptItem("您好，{name}。"),))

    first = responses.prompts(flow, [spec], _render)
    second = responses.prompts(
        flow, [spec], lambda text: (text.replace("{name}", "y"), {"name": "y"})
    )

    assert second is not first
    assert (_texts(first), _texts(second)) == (["您好，x。"], ["您好，y。"])


def test_once_builds_on_first_use_and_a_copy_of_the_flow_starts_empty() -> None:
    flow = _flow()
    built: list[int] = []

    def build() -> int:
        built.append(1)
        return len(built)

    assert [responses.once(flow, ("k", 1), build) for _ in range(3)] == [1, 1, 1]
    assert responses.once(flow, ("k", 2), build) == 2
    assert replace(flow, version="2").built == {}


def test_a_response_changed_by_one_call_leaves_the_shared_parts_as_built() -> None:
    flow = _flow()
    first = decide(flow, None, _request("call-1", "call_started"))
    first.response.play_and_listen.prompts.items[0].tts.text = "changed"
    first.response.play_and_listen.speech.language = "changed"

    second = decide(flow, None, _request("call-2", "call_started"))

    assert _texts(second.response.play_and_listen.prompts) == ["请说您的名字。"]
    assert second.response.play_and_listen.speech.language == "zh-CN"


def test_each_call_hears_its_own_values_in_a_template() -> None:
    flow = _flow()
    heard = []
    for call_id, name in (("call-1", "张三"), ("call-2", "李四")):
        started = decide(flow, None, _request(call_id, "call_started"))
        said = decide(flow, started.state, _request(call_id, "speech_recognized", text=name))
        heard.append(_texts(said.response.play_and_hang_up.prompts))

    assert heard == [["您好，张三。", "再见。"], ["您好，李四。", "再见。"]]
