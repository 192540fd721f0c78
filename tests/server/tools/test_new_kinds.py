"""The tools on a flow using business hours, `set` and a fulfillment hook: the call's time and
hook results come from the test file, chat calls hooks over HTTP like the server."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.server.tools.conftest import Run

SERVER_JOIN_TIMEOUT_S = 10

_FLOW = """\
flow: balance
version: "1"
language: zh-CN
timezone: Asia/Shanghai
start: hours
defaults:
  on_max_attempts: bye
nodes:
  hours:
    type: hours
    schedule:
      mon-fri: "09:00-18:00"
    open: ask
    closed: closed
  ask:
    type: collect
    slot: account
    slot_type: digits
    min_length: 4
    max_length: 8
    prompt: 请输入账号。
    next: remember
  remember:
    type: set
    set:
      account_label: "账号{account}"
    next: lookup
  lookup:
    type: fulfillment
    url: URL
    # Room for a loaded test machine: the hook is a local HTTP server.
    timeout_ms: 5000
    args: {account: "{account}"}
    slots: [balance]
    on_success: tell
    on_error: sorry
  tell:
    type: hangup
    prompt: "{account_label}的余额是{balance}元。"
  sorry:
    type: hangup
    prompt: 系统繁忙，请稍后再拨。
    reason: failed
  closed:
    type: hangup
    prompt: 现在是非工作时间。
  bye:
    type: hangup
    prompt: 再见。
"""

_TESTS = """\
flow_file: balance.yaml
call: {time: "2026-11-23T10:00:00+08:00"}
cases:
  - name: open, balance found
    turns:
      - start: true
        expect: {node: ask, note_contains: open}
      - keys: "1234"
        hooks: [{ok: {slots: {balance: "42.50"}}}]
        expect:
          action: play_and_hang_up
          node: tell
          prompts: [账号1234的余额是42.50元。]
          slots: {account_label: 账号1234, balance: "42.50"}
  - name: the service times out
    turns:
      - start: true
      - keys: "1234"
        hooks: [{timeout: true}]
        expect: {node: sorry, dialogue_over: true}
  - name: closed on Saturday evening
    call: {time: "2026-11-28T20:00:00+08:00"}
    turns:
      - start: true
        expect: {action: play_and_hang_up, node: closed}
"""


def _write_flow(directory: Path, url: str) -> Path:
    path = directory / "balance.yaml"
    path.write_text(_FLOW.replace("URL", url), encoding="utf-8")
    return path


@pytest.fixture
def fulfillment() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A fulfillment service on loopback answering a balance; yields its URL and the requests."""
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(json.loads(self.rfile.read(length)))
            body = json.dumps({"slots": {"balance": "42.50"}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/balance", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=SERVER_JOIN_TIMEOUT_S)


def test_validate_and_graph_read_the_new_kinds(run: Run, tmp_path: Path) -> None:
    flow = _write_flow(tmp_path, "http://127.0.0.1:9/balance")
    assert run("validate", "--strict", str(flow)).status == 0
    dot = run("graph", str(flow)).out
    assert '"hours" [shape=trapezium' in dot
    assert '"remember" [shape=rect' in dot
    assert '"lookup" [shape=box3d' in dot
    assert '"hours" -> "closed" [label="closed"];' in dot
    assert '"lookup" -> "sorry" [label="timeout"' in dot


def test_a_slot_only_a_set_node_fills_is_checked_along_paths(run: Run, tmp_path: Path) -> None:
    flow = _write_flow(tmp_path, "http://127.0.0.1:9/balance")
    text = flow.read_text(encoding="utf-8").replace(
        "prompt: 现在是非工作时间。", 'prompt: "{account_label}现在是非工作时间。"'
    )
    flow.write_text(text, encoding="utf-8")
    result = run("validate", str(flow))
    assert result.status == 0
    assert result.lines[0] == (
        f"{flow}:46: warning: node 'closed'.prompt: reads slot 'account_label' at node 'closed', "
        "but no path to it sets 'account_label' first (it is always empty here)"
    )


def test_conversation_tests_give_the_time_and_the_hook_results(run: Run, tmp_path: Path) -> None:
    _write_flow(tmp_path, "http://127.0.0.1:9/balance")
    tests = tmp_path / "balance-tests.yaml"
    tests.write_text(_TESTS, encoding="utf-8")
    result = run("test", str(tests))
    assert result.status == 0, result.out
    assert result.lines[-1] == "3 passed, 0 failed"


def test_a_hook_without_a_result_and_unused_results_fail(run: Run, tmp_path: Path) -> None:
    _write_flow(tmp_path, "http://127.0.0.1:9/balance")
    tests = tmp_path / "t.yaml"
    tests.write_text(
        textwrap.dedent("""\
            flow_file: balance.yaml
            call: {time: "2026-11-23T10:00:00+08:00"}
            cases:
              - name: forgot the result
                turns:
                  - start: true
                  - keys: "1234"
              - name: one result too many
                turns:
                  - start: true
                    hooks: [{error: down}]
        """),
        encoding="utf-8",
    )
    result = run("test", str(tests))
    assert result.status == 1
    assert result.lines[1] == (
        "FAIL forgot the result: turn 2: the turn reached the fulfillment hook of node 'lookup' "
        "(POST http://127.0.0.1:9/balance), and no result is given for it"
    )
    assert "FAIL one result too many: turn 1: 1 hook results given, 0 used" in result.lines


def test_chat_calls_the_hook_over_http(
    run: Run, tmp_path: Path, fulfillment: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = fulfillment
    flow = _write_flow(tmp_path, url)
    result = run("chat", str(flow), "--now", "2026-11-23T10:00:00+08:00", stdin="#1234#\n")
    assert result.status == 0
    assert f"hook fulfillment of lookup: POST {url} → ok" in result.lines
    assert "    say: 账号1234的余额是42.50元。" in result.lines
    assert [request["args"] for request in received] == [{"account": "1234"}]


def test_chat_can_answer_hooks_with_errors_without_calling(
    run: Run, tmp_path: Path, fulfillment: tuple[str, list[dict[str, Any]]]
) -> None:
    url, received = fulfillment
    flow = _write_flow(tmp_path, url)
    result = run(
        "chat",
        str(flow),
        "--now",
        "2026-11-23T10:00:00+08:00",
        "--hooks",
        "timeout",
        stdin="#1234#\n",
    )
    assert "bot [play_and_hang_up] node sorry · intent account · dialogue over" in result.lines
    assert received == []


def test_chat_outside_business_hours(run: Run, tmp_path: Path) -> None:
    flow = _write_flow(tmp_path, "http://127.0.0.1:9/balance")
    result = run("chat", str(flow), "--now", "2026-11-28T20:00:00+08:00")
    assert "    say: 现在是非工作时间。" in result.lines
    assert run("chat", str(flow), "--now", "tomorrow").status == 2
