"""`dialogue chat`: a conversation piped through stdin, shown decision by decision."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from server.config import DEMO_FLOWS
from server.tools.chat import Event, parse_input
from server.tools.common import ToolError
from tests.server.tools.conftest import Run
from tests.support.server_process import REPO_ROOT

SUBPROCESS_TIMEOUT_S = 120


def test_a_piped_conversation_shows_every_decision(run: Run) -> None:
    result = run("chat", "carrier-zh", stdin="我想查话费\n幺三八 零零一三 八零零零\n#2#\n")
    assert result.status == 0
    assert result.lines[0].startswith("chatting with carrier-zh 2026.11.1 (")
    # The engine's notes are its own wording: checked loosely below, exactly elsewhere.
    notes = [line for line in result.lines if line.startswith("    note: ")]
    assert [note.split(" (")[0] for note in notes] == [
        "    note: call started",
        "    note: chose 'bill' by voice",
        "    note: phone collected",
        "    note: chose 'goodbye' by key 2",
    ]
    assert [line for line in result.lines[1:] if line not in notes] == [
        "bot [play_and_listen] node main_menu",
        "    say: 欢迎致电中国移动客服热线。本次通话可能会被录音。",
        "    say: 查询话费请按1或说“话费”，流量套餐请按2或说“流量”，人工服务请按0或说“人工”。",
        "    listen: 1 key of *012; speech zh-CN (hints: 话费, 账单, 余额, 查话费, 缴费, 流量, …)",
        "you> 我想查话费",
        "bot [play_and_listen] node bill_phone · intent bill",
        "    say: 请输入或说出您要查询的11位手机号码，以井号键结束。",
        "    listen: 11 keys of 0123456789#, ended by #; speech zh-CN",
        "you> 幺三八 零零一三 八零零零",
        "bot [play_and_listen] node anything_else · intent phone",
        "    say: 您查询的号码13800138000本月账单已生成，详细账单已通过短信发送到该号码。",
        "    say: 返回主菜单请按1，结束通话请按2，人工服务请按0。",
        "    listen: 1 key of *012; speech zh-CN (hints: 主菜单, 返回, 还有, 其他, 结束, 没有了, …)",
        "you> #2#",
        "bot [play_and_hang_up] node goodbye · intent goodbye · dialogue over",
        "    say: 感谢您的来电，再见。",
        "    hang up (completed)",
        "-- the dialogue is over --",
    ]


def test_state_is_shown_after_every_turn_with_the_flag_and_on_request(run: Run) -> None:
    result = run("chat", "carrier-zh", "--state", stdin="#1#\n#13800138000#\n/state\n/quit\n#0#\n")
    assert result.status == 0
    states = [line.strip() for line in result.lines if line.strip().startswith("state:")]
    assert states == [
        "state: node main_menu · turn 1 · slots - · counters - · params -",
        "state: node bill_phone · turn 2 · slots - · counters - · params -",
        "state: node anything_else · turn 3 · slots phone=13800138000 · counters - · params -",
        "state: node anything_else · turn 3 · slots phone=13800138000 · counters - · params -",
    ]
    # /quit leaves: the key pressed after it is never sent.
    assert "you> #0#" not in result.lines


def test_silence_nomatch_and_hangup(run: Run) -> None:
    result = run("chat", "carrier-en", stdin="/silence\n/nomatch\n/hangup\n")
    assert result.status == 0
    notes = [line.strip() for line in result.lines if line.strip().startswith("note:")]
    assert [note.split(" (")[0] for note in notes] == [
        "note: call started",
        "note: no-input 1 of 3 at main_menu",
        "note: no-match 1 of 3 at main_menu",
        "note: caller hung up",
    ]
    assert "    say: Sorry, I didn't hear anything." in result.lines
    assert result.lines[-1] == "-- the dialogue is over --"


def test_transfer_record_and_any_event_by_slash_commands(run: Run) -> None:
    survey = run(
        "chat",
        "survey",
        "--outbound",
        stdin="#1#\n#1#\n/recorded https://rec.example.com/1.wav\n",
    )
    assert any(line.startswith("bot [record] node complaint") for line in survey.lines)
    assert "    say: 您的评分是1分，感谢您的反馈，祝您生活愉快，再见。" in survey.lines
    agent = run(
        "chat", "carrier-zh", stdin='/event platform_error {"code": "503"}\n#0#\n/transfer failed\n'
    )
    assert any(
        line.startswith("    note: no-match 1 of 3") and "503" in line for line in agent.lines
    )
    assert "    transfer: skill queue 10086001 (blind)" in agent.lines
    assert "bot [play_and_hang_up] node agent_busy · dialogue over" in agent.lines


def test_a_barge_in_too_short_is_told_from_one_not_allowed(run: Run, tmp_path: Path) -> None:
    flow = tmp_path / "barge.yaml"
    flow.write_text(
        """\
flow: barge
version: "1"
start: ask
defaults: {on_max_attempts: bye, barge_in: speech, min_speech_ms: 500}
nodes:
  ask: {type: menu, prompt: 请选择, choices: [{intent: a, key: "1", next: bye}]}
  bye: {type: hangup}
""",
        encoding="utf-8",
    )
    result = run("chat", str(flow), stdin="/bargein 300\n/bargein 600\n")
    notes = [line for line in result.lines if line.startswith("    note: ")]
    assert notes[1:] == [
        "    note: barge-in too short (spoke 300 ms, needs 500 ms): carry on",
        "    note: caller spoke 600 ms over the prompt: stop it",
    ]


def test_mistakes_are_reported_and_the_chat_goes_on(run: Run) -> None:
    result = run(
        "chat",
        "carrier-zh",
        stdin="/dance\n/event nonsense {}\n/event no_input [1]\n/help\n\n#1#\n",
    )
    assert result.status == 0
    errors = [line for line in result.lines if line.startswith("error:")]
    assert errors == [
        "error: unknown command /dance (/help lists the inputs)",
        "error: unknown event 'nonsense' (expected one of: call_started, speech_recognized, "
        "digits_entered, no_input, no_match, playback_finished, barged_in, recording_finished, "
        "ai_gather_finished, transfer_finished, call_ended, platform_error, queue_status_reported, "
        "assistant_finished)",
        "error: /event no_input: the payload must be a JSON object",
    ]
    assert "  /silence          the caller says nothing (no input)" in result.lines
    assert "bot [play_and_listen] node bill_phone · intent bill" in result.lines


def test_a_flow_file_and_call_parameters(run: Run) -> None:
    result = run(
        "chat", str(DEMO_FLOWS / "carrier-en.yaml"), "--param", "vip=1", "--state", stdin=""
    )
    assert result.status == 0
    assert "state: node main_menu · turn 1 · slots - · counters - · params vip=1" in result.out


def test_an_unknown_flow_names_the_known_ones(run: Run) -> None:
    result = run("chat", "carrier-fr")
    assert result.status == 2
    assert "no flow 'carrier-fr'" in result.err
    assert "flow ids: carrier-en, carrier-intl, carrier-zh, survey" in result.err


def test_a_routed_selector_finds_its_flow(run: Run) -> None:
    result = run("chat", "10087")
    assert result.lines[0].startswith("chatting with carrier-en ")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("我想查话费\n", Event("speech_recognized", {"text": "我想查话费"})),
        ("#123#", Event("digits_entered", {"digits": "123"})),
        ("##", Event("digits_entered", {"digits": ""})),
        ("#", Event("speech_recognized", {"text": "#"})),
        ("/silence", Event("no_input", {})),
        ("/nomatch", Event("no_match", {})),
        ("/hangup", Event("call_ended", {"hung_up_by": "HANG_UP_PARTY_CALLER"})),
        ("/transfer ok", Event("transfer_finished", {"outcome": "TRANSFER_OUTCOME_SUCCEEDED"})),
        (
            "/transfer busy",
            Event(
                "transfer_finished",
                {"outcome": "TRANSFER_OUTCOME_FAILED", "failure": "TRANSFER_FAILURE_BUSY"},
            ),
        ),
        (
            "/transfer no_answer",
            Event(
                "transfer_finished",
                {"outcome": "TRANSFER_OUTCOME_FAILED", "failure": "TRANSFER_FAILURE_NO_ANSWER"},
            ),
        ),
        ("/bargein 300", Event("barged_in", {"speech_duration_ms": 300})),
        ("/quit", "quit"),
        ("/exit", "quit"),
        ("/state", "state"),
    ],
)
def test_input_lines(line: str, expected: Event | str) -> None:
    assert parse_input(line) == expected


@pytest.mark.parametrize("line", ["/transfer maybe", "/bargein", "/event", "/event x {"])
def test_malformed_slash_commands(line: str) -> None:
    with pytest.raises(ToolError):
        parse_input(line)


def test_python_m_server_tools_chats_over_a_pipe() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "server.tools", "chat", "carrier-en"],
        input=b"talk to a person\n/transfer ok\n",
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    out = completed.stdout.decode()
    assert completed.returncode == 0, completed.stderr.decode()
    assert "you> talk to a person" in out
    assert "bot [play_and_transfer] node agent · intent agent" in out
    assert "bot [end_dialogue] node agent · dialogue over" in out
