"""The tools on a flow that uses a subflow: the loader inlines it, the tools see the result."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.tools.conftest import Run

_SUBFLOW = """\
subflow: ask_mobile
start: ask
nodes:
  ask:
    type: collect
    slot: mobile
    slot_type: digits
    min_length: 11
    max_length: 11
    prompt: 请输入手机号码。
    on_max: failed
    next: done
  done: {type: return}
  failed: {type: return, outcome: failed}
"""

_FLOW = """\
flow: main
version: "1"
start: get_mobile
defaults:
  on_max_attempts: bye
nodes:
  get_mobile:
    type: subflow
    flow: ask_mobile
    next: thanks
    outcomes: {failed: bye}
  thanks:
    type: hangup
    prompt: 谢谢，{mobile}已登记。
  bye:
    type: hangup
    prompt: 再见。
"""


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    (tmp_path / "subflows").mkdir()
    (tmp_path / "subflows" / "ask_mobile.yaml").write_text(_SUBFLOW, encoding="utf-8")
    (tmp_path / "main.yaml").write_text(_FLOW, encoding="utf-8")
    return tmp_path


def test_a_flow_with_a_subflow_validates_clean(run: Run, flows: Path) -> None:
    result = run("validate", "--strict", str(flows))
    assert (result.status, result.lines) == (0, ["1 flow file checked: no problems"])


def test_problems_inside_inlined_nodes_point_at_the_subflow_node(run: Run, flows: Path) -> None:
    (flows / "main.yaml").write_text(
        _FLOW.replace("outcomes: {failed: bye}", "outcomes: {failed: spin}")
        + "  spin:\n    type: wait\n    duration_ms: 100\n    next: spin\n",
        encoding="utf-8",
    )
    result = run("validate", str(flows / "main.yaml"))
    assert result.status == 1
    # The trap is entered at the subflow's `failed` return, inlined as `get_mobile.failed`: it is
    # reported at the subflow node's line.
    assert result.lines[0] == (
        f"{flows / 'main.yaml'}:7: error: node 'get_mobile.failed': dead end: no path from "
        "here reaches a hangup or a transfer, so the call can never end (from here it can only "
        "reach: spin)"
    )


def test_a_broken_subflow_nobody_uses_is_reported(run: Run, flows: Path) -> None:
    (flows / "subflows" / "unused.yaml").write_text(
        "subflow: unused\nstart: a\nnodes:\n  a: {type: bogus}\n", encoding="utf-8"
    )
    result = run("validate", str(flows))
    assert result.status == 1
    unused = flows / "subflows" / "unused.yaml"
    assert any(
        line.startswith(f"{unused}:4: error: node 'a'.type: unknown node type 'bogus'")
        for line in result.lines
    )


def test_chat_and_graph_run_through_the_inlined_nodes(run: Run, flows: Path) -> None:
    chat = run("chat", str(flows / "main.yaml"), stdin="#13800138000#\n")
    assert "bot [play_and_listen] node get_mobile.ask" in chat.lines
    assert "    say: 谢谢，13800138000已登记。" in chat.lines
    mermaid = run("graph", str(flows / "main.yaml"), "--mermaid").out
    assert 'get_mobile.ask -->|"mobile filled"| get_mobile.done' in mermaid


def test_graph_shapes_the_subflow_node_and_its_returns_and_names_them(
    run: Run, flows: Path
) -> None:
    mermaid = run("graph", str(flows / "main.yaml"), "--mermaid").lines
    assert '  get_mobile((("get_mobile<br/>subflow<br/>ask_mobile")))' in mermaid
    assert '  get_mobile.done("get_mobile.done<br/>return<br/>done")' in mermaid
    assert '  get_mobile.failed("get_mobile.failed<br/>return<br/>failed")' in mermaid
    assert "  get_mobile --> get_mobile.ask" in mermaid  # entering the copy: no "default"
    assert '  get_mobile.done -->|"returns done"| thanks' in mermaid
    assert '  get_mobile.failed -->|"returns failed"| bye' in mermaid
    dot = run("graph", str(flows / "main.yaml")).out
    assert '"get_mobile" [shape=folder' in dot
    assert '"get_mobile.done" [shape=house' in dot
    assert '"get_mobile.failed" -> "bye" [label="returns failed"];' in dot


def test_a_branch_without_cases_is_still_a_branch(run: Run, flows: Path) -> None:
    text = _FLOW.replace("    next: thanks\n", "    next: check\n") + (
        "  check: {type: branch, cases: [], default: thanks}\n"
    )
    (flows / "main.yaml").write_text(text, encoding="utf-8")
    mermaid = run("graph", str(flows / "main.yaml"), "--mermaid").lines
    assert '  check{"check<br/>branch"}' in mermaid
    assert '  get_mobile.done -->|"returns done"| check' in mermaid
