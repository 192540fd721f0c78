"""The flow guide's complete examples load, and its worked example runs as the guide tells it.

Every ```yaml block of docs/flows.md that is a whole flow (starts with `flow:`) or subflow
(`subflow:`) is loaded with the guide's subflows and the demo ones; snippets of single nodes, and
outlines that leave parts out ("# …"), are not checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.flow import Flow
from server.engine.flowfile import Subflow, load_subflows, parse_flow, parse_subflows
from server.engine.hooks import FULFILLMENT, HookResult, Outcome
from server.engine.interpreter import Decision, decide, resume
from server.engine.state import CallState
from tests.server.engine.test_interpreter import keys, speech, spoken, started

_ROOT = Path(__file__).resolve().parents[3]
_GUIDE = _ROOT / "docs" / "flows.md"
_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def _blocks(kind: str) -> list[str]:
    found = []
    for block in _BLOCK.findall(_GUIDE.read_text(encoding="utf-8")):
        lines = [line for line in block.splitlines() if line and not line.startswith("#")]
        if lines and lines[0].startswith(f"{kind}:") and "…" not in block:
            found.append(block)
    return found


def _subflows() -> dict[str, Subflow]:
    library = dict(load_subflows(_ROOT / "flows" / "subflows"))
    library.update(parse_subflows({f"guide-{n}": b for n, b in enumerate(_blocks("subflow"))}))
    return library


def _guide_flows() -> dict[str, Flow]:
    library = _subflows()
    flows = [parse_flow(block, "docs/flows.md", library) for block in _blocks("flow")]
    return {flow.id: flow for flow in flows}


def test_the_guide_has_complete_examples_and_they_all_load() -> None:
    assert {"collect-demo", "appointment-zh"} <= set(_guide_flows())
    assert "collect_mobile" in _subflows()


def test_the_guides_subflow_is_the_demo_one() -> None:
    demo = load_subflows(_ROOT / "flows" / "subflows")["collect_mobile"]
    guide = parse_subflows({"guide": _blocks("subflow")[0]})["collect_mobile"]
    assert guide.nodes == demo.nodes


def _at(request: pb.DecideNextActionRequest) -> pb.DecideNextActionRequest:
    request.occurred_at.FromJsonString("2026-03-04T02:00:00Z")  # Wednesday 10:00 in Shanghai
    return request


def test_the_worked_example_runs_as_the_guide_tells_it() -> None:
    flow = _guide_flows()["appointment-zh"]
    state: CallState | None = None

    def turn(request: pb.DecideNextActionRequest, *results: HookResult) -> Decision:
        nonlocal state
        request = _at(request)
        decision = decide(flow, state, request)
        if results:
            assert decision.pending_hook is not None
            decision = resume(flow, state, request, list(results))
        assert decision.pending_hook is None
        state = decision.state
        return decision

    first = turn(started())
    assert first.state.node == "get_phone.ask"
    assert spoken(first) == ["请说出或输入您的11位手机号码。"]
    assert "office: open at Wed 2026-03-04 10:00 Asia/Shanghai" in first.response.diagnostics.note
    assert spoken(turn(speech("幺三八 零零一三 八零零零"))) == [
        "您的号码是13800138000，正确请按1，重新输入请按2。"
    ]
    assert spoken(turn(keys("1")))[0].startswith("请问您想预约哪一天？")
    assert spoken(turn(speech("今天"))) == [
        "最早只能预约明天。",
        "请问您想预约哪一天？比如“明天”或“下周一”。",
    ]
    assert spoken(turn(speech("下周一")))[0].startswith("几点呢？")
    assert spoken(turn(speech("下午三点"))) == [
        "为您预约2026-03-09 15:00，确认请按1，重新选择请按2。"
    ]
    assert spoken(turn(speech("对的"))) == ["初诊请按1，复诊请按2。"]
    request = _at(speech("复查"))
    pending = decide(flow, state, request)
    hook = pending.pending_hook
    assert hook is not None
    assert (hook.kind, hook.url, hook.timeout_ms) == (
        FULFILLMENT,
        "http://booking.internal/appointments",
        400,
    )
    assert hook.payload["args"] == {
        "mobile": "13800138000",
        "day": "2026-03-09",
        "at": "15:00",
        "kind": "return",
    }
    assert hook.payload["params"] == {"channel": "ivr"}
    done = turn(speech("复查"), HookResult(Outcome.OK, {"slots": {"ticket": "A1024"}}))
    assert spoken(done) == ["预约成功，您的预约号是A1024，我们会短信通知13800138000。再见。"]
    assert done.response.dialogue_over


@pytest.mark.parametrize("outcome", [Outcome.ERROR, Outcome.TIMEOUT])
def test_the_worked_example_hands_over_when_booking_fails(outcome: Outcome) -> None:
    flow = _guide_flows()["appointment-zh"]
    state: CallState | None = None
    for request in (
        started(),
        speech("13800138000"),
        keys("1"),
        speech("下周一"),
        speech("下午三点"),
        keys("1"),
    ):
        state = decide(flow, state, _at(request)).state
    request = _at(keys("2"))
    decision = resume(flow, state, request, [HookResult(outcome)])
    assert decision.state.node == "agent"
    assert decision.response.WhichOneof("action") == "play_and_transfer"


def test_after_hours_the_worked_example_says_so() -> None:
    flow = _guide_flows()["appointment-zh"]
    request = started()
    request.occurred_at.FromJsonString("2026-03-04T12:00:00Z")  # 20:00 in Shanghai
    assert decide(flow, None, request).state.node == "after_hours"
