"""`dialogue test`: the demo flows' conversation tests pass; failures and broken test files are
reported like a test runner, with the turn and line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from server.config import DEMO_FLOWS
from tests.server.tools.conftest import Run
from tests.support.server_process import REPO_ROOT

SUBPROCESS_TIMEOUT_S = 120
DEMO_TESTS = DEMO_FLOWS / "tests"


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_demo_flows_conversation_tests_pass(run: Run) -> None:
    result = run("test", str(DEMO_TESTS))
    assert result.status == 0, result.out
    passed = [line for line in result.lines if line.startswith("PASS ")]
    assert len(passed) >= 40
    assert result.lines[-1] == f"{len(passed)} passed, 0 failed"
    headers = [line for line in result.lines if not line.startswith("PASS ")][:-1]
    assert [header.split(" (")[0] for header in headers] == [
        str(path) for path in sorted(DEMO_TESTS.glob("*.yaml"))
    ]


def test_every_demo_flow_has_conversation_tests() -> None:
    flows = {path.stem for path in DEMO_FLOWS.glob("*.yaml") if path.stem != "routing"}
    assert {path.stem for path in DEMO_TESTS.glob("*.yaml")} == flows


def test_a_failing_case_names_the_turn_what_differs_and_what_the_bot_did(
    run: Run, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "zh.yaml",
        """\
        flow: carrier-zh
        cases:
          - name: bill by key
            turns:
              - start: true
                expect: {node: main_menu}
              - keys: "1"
                expect: {node: bill_phone, intent: bill}
          - name: data by key, wrongly expected
            turns:
              - start: true
              - keys: "2"
                expect:
                  node: bill_phone
                  say_contains: 话费
                  slots: {phone: "13800138000"}
              - keys: "1"
                expect: {node: main_menu}
        """,
    )
    result = run("test", str(path))
    assert result.status == 1
    assert result.lines[:3] == [
        f"{path} (carrier-zh 2026.11.1)",
        "PASS bill by key",
        "FAIL data by key, wrongly expected: turn 2: expected node 'bill_phone', got "
        "'anything_else'; expected the prompts to contain '话费', got: "
        "您当前的套餐包含每月30GB国内流量，超出部分按每GB3元计费。办理流量加油包请说“人工”。 | "
        "返回主菜单请按1，结束通话请按2，人工服务请按0。; expected slot phone = '13800138000', got unset",
    ]
    assert result.lines[3] == f"  at {path}:12"
    assert result.lines[4].startswith("  got [play_and_listen] node anything_else")
    assert result.lines[-1] == "1 passed, 1 failed"


def test_partial_response_matching_reports_the_field_path(run: Run, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "en.yaml",
        """\
        flow: carrier-en
        cases:
          - name: agent queue
            turns:
              - start: true
                expect:
                  response:
                    play_and_listen:
                      digits: {valid_keys: "012"}
                      speech: null
        """,
    )
    result = run("test", str(path))
    assert result.status == 1
    assert result.lines[1] == (
        "FAIL agent queue: turn 1: expected response.play_and_listen.digits.valid_keys = '012', "
        "got '*0124'; expected no response.play_and_listen.speech, got a mapping"
    ) or result.lines[1].startswith(
        "FAIL agent queue: turn 1: expected response.play_and_listen.digits.valid_keys = '012', "
        "got '*0124'; expected no response.play_and_listen.speech, got "
    )


def test_generic_events_parameters_and_call_facts(run: Run, tmp_path: Path) -> None:
    path = _write(
        tmp_path / "survey.yaml",
        """\
        selector: survey-2026q4
        call: {direction: outbound, params: {campaign: q4}}
        cases:
          - name: a platform error counts as a no-match
            call: {caller: "10086", callee: "+8613900000000"}
            turns:
              - event: {call_started: {}}
              - event: {platform_error: {code: "503", message: asr down}}
                params: {attempt: "2"}
                expect: {node: intro, counters: {no_match: 1}, note_contains: "503"}
              - event: {digits_entered: {digits: "1"}}
                expect: {node: score, slots: {consent: "yes"}}
        """,
    )
    result = run("test", str(path))
    assert result.status == 0, result.out
    assert result.lines[-1] == "1 passed, 0 failed"


def test_a_flow_file_beside_the_test(run: Run, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "en.yaml").write_text(
        (DEMO_FLOWS / "carrier-en.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    path = _write(
        tmp_path / "t.yaml",
        """\
        flow_file: flows/en.yaml
        cases:
          - name: starts
            turns:
              - start: true
                expect: {node: main_menu, action: play_and_listen}
        """,
    )
    assert run("test", str(path)).lines[-1] == "1 passed, 0 failed"


def test_selecting_cases_by_name(run: Run) -> None:
    result = run("test", str(DEMO_TESTS), "-k", "repeat")
    assert result.status == 0
    passed = [line for line in result.lines if line.startswith("PASS ")]
    assert passed
    assert all("repeat" in line for line in passed)
    assert run("test", str(DEMO_TESTS), "-k", "no such case").status == 1


def test_verbose_shows_every_turn(run: Run) -> None:
    result = run("test", str(DEMO_TESTS / "survey.yaml"), "-k", "top score", "-v")
    assert result.lines[1:5] == [
        "  turn 1 call_started: [play_and_listen] node intro",
        "  turn 2 digits_entered '1': [play_and_listen] node score · intent consent",
        "  turn 3 digits_entered '5': [play_and_hang_up] node thanks · intent score · dialogue over",
        "PASS consent by key, top score by key, thanks with the score",
    ]


_BROKEN = {
    "an unknown expectation": (
        "flow: carrier-zh\ncases:\n  - name: x\n    turns:\n      - start: true\n"
        "        expect: {nod: main_menu}\n",
        "6: case 'x' turn 1.expect: unknown field 'nod' (expected one of: action, node, intent, "
        "say_contains, say_not_contains, prompts, note_contains, slots, counters, "
        "dialogue_over, response)",
    ),
    "unquoted keys": (
        "flow: carrier-zh\ncases:\n  - name: x\n    turns:\n      - keys: 0123\n",
        "5: case 'x' turn 1: keys: expected quoted text, e.g. keys: \"1\"",
    ),
    "two inputs in one turn": (
        "flow: carrier-zh\ncases:\n  - name: x\n    turns:\n      - {say: 你好, silence: true}\n",
        "5: case 'x' turn 1: expected exactly one input (start, silence, no_match, played, "
        "hangup, say, keys, recorded, transfer, barge_in, queue, event), got silence, say",
    ),
    "an unknown action": (
        "flow: carrier-zh\ncases:\n  - name: x\n    turns:\n      - start: true\n"
        "        expect:\n          action: listen\n",
        "7: case 'x' turn 1.expect.action: unknown action 'listen' (expected one of: "
        "play_and_listen, play_and_transfer, play_and_hang_up, play, record, keep_playing, "
        "stop_playing, wait, ai_gather, end_dialogue, query_queue, hand_to_assistant)",
    ),
    "an unknown transfer result": (
        "flow: carrier-zh\ncases:\n  - name: x\n    turns:\n      - start: true\n"
        "      - transfer: engaged\n",
        "6: case 'x' turn 2: transfer: expected one of: succeeded, failed, busy, no_answer, "
        "rejected, unreachable",
    ),
    "a selector routed elsewhere": (
        'flow: carrier-zh\nselector: "10087"\ncases: []\n',
        "2: selector '10087' routes to flow 'carrier-en', not 'carrier-zh'",
    ),
    "an unknown flow": (
        "flow: carrier-fr\ncases: []\n",
        "1: no flow 'carrier-fr' in",
    ),
    "a case name used twice": (
        "flow: survey\ncases:\n  - {name: x, turns: [start: true]}\n"
        "  - {name: x, turns: [start: true]}\n",
        "4: cases[1]: name 'x' is used twice",
    ),
    "a YAML error": (
        "flow: survey\ncases: [\n",
        "3: yaml: while parsing a flow node expected the node content",
    ),
}


def test_broken_test_files_are_errors_at_their_line(run: Run, tmp_path: Path) -> None:
    for index, (text, _) in enumerate(_BROKEN.values()):
        (tmp_path / f"t{index}.yaml").write_text(text, encoding="utf-8")
    result = run("test", str(tmp_path))
    assert result.status == 1
    errors = [line for line in result.lines if line.startswith("ERROR ")]
    for index, (name, (_, message)) in enumerate(_BROKEN.items()):
        prefix = f"ERROR {tmp_path / f't{index}.yaml'}:"
        assert any(
            line.startswith(prefix) and line.removeprefix(prefix).startswith(message)
            for line in errors
        ), (name, errors)
    assert result.lines[-1] == f"0 passed, {len(_BROKEN)} failed"


def test_a_missing_path_exits_2(run: Run, tmp_path: Path) -> None:
    result = run("test", str(tmp_path / "missing.yaml"))
    assert result.status == 2
    assert "missing.yaml: no such file or directory" in result.err


def test_a_flows_directory_means_the_tests_in_its_tests_directory(run: Run) -> None:
    of_tests = run("test", str(DEMO_TESTS))
    of_flows = run("test", str(DEMO_FLOWS))
    assert of_flows.status == 0, of_flows.out
    assert of_flows.out == of_tests.out


def test_a_flows_directorys_tests_run_against_its_own_flows(run: Run, tmp_path: Path) -> None:
    flows = tmp_path / "my-flows"
    (flows / "tests").mkdir(parents=True)
    _write(
        flows / "hello.yaml",
        """\
        flow: hello
        version: "1"
        start: bye
        defaults: {on_max_attempts: bye}
        nodes:
          bye: {type: hangup, prompt: 你好，再见。}
        """,
    )
    _write(
        flows / "tests" / "hello.yaml",
        """\
        flow: hello
        cases:
          - name: says hello
            turns:
              - {start: true, expect: {say_contains: 你好, dialogue_over: true}}
        """,
    )
    result = run("test", str(flows))
    assert result.status == 0, result.out
    assert result.lines == [
        f"{flows / 'tests' / 'hello.yaml'} (hello 1)",
        "PASS says hello",
        "1 passed, 0 failed",
    ]
    # --flows still decides where flow ids are looked up: the demo flows have no `hello`.
    elsewhere = run("test", "--flows", str(DEMO_FLOWS), str(flows))
    assert elsewhere.status == 1
    assert "no flow 'hello'" in elsewhere.out


def test_a_flows_directory_without_tests_exits_2(run: Run, tmp_path: Path) -> None:
    _write(tmp_path / "routing.yaml", "routes: {}\n")
    result = run("test", str(tmp_path))
    assert result.status == 2
    assert f"{tmp_path} is a flows directory without conversation tests" in result.err


def test_python_m_server_tools_runs_the_demo_conversation_tests() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "server.tools", "test", "flows/tests"],
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    out = completed.stdout.decode()
    assert completed.returncode == 0, out + completed.stderr.decode()
    assert out.splitlines()[-1].endswith(" passed, 0 failed")
