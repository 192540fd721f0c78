"""`dialogue validate`: the demo flows are clean; broken flows are reported at file:line with the
right exit status."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from server.config import DEMO_FLOWS
from server.engine.flowfile import FlowError, load_flow_file
from tests.server.tools.conftest import Run

_VALID = """\
flow: demo
version: "1"
start: menu
defaults:
  on_max_attempts: bye
nodes:
  menu:
    type: menu
    prompt: Press 1 to leave.
    choices:
      - intent: leave
        key: "1"
        next: bye
  bye:
    type: hangup
    prompt: Goodbye.
"""


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_demo_flows_validate_clean_even_with_strict(run: Run) -> None:
    result = run("validate", "--strict", str(DEMO_FLOWS))
    assert result.status == 0, result.out
    flows = [p for p in DEMO_FLOWS.glob("*.yaml") if p.stem != "routing"]
    assert result.lines == [f"{len(flows)} flow files checked: no problems"]


@pytest.mark.parametrize("name", ["carrier-zh.yaml", "carrier-en.yaml", "survey.yaml"])
def test_each_demo_flow_file_validates_clean(run: Run, name: str) -> None:
    result = run("validate", "--strict", str(DEMO_FLOWS / name))
    assert (result.status, result.lines) == (0, ["1 flow file checked: no problems"])


def test_a_loader_error_is_reported_at_its_line_and_fails(run: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, "demo.yaml", _VALID.replace("next: bye", "next: byee"))
    result = run("validate", str(path))
    assert result.status == 1
    assert result.lines[0] == (
        f"{path}:13: error: node 'menu'.choices[0].next: unknown node 'byee' "
        "(expected one of: bye, menu)"
    )
    assert result.lines[-1] == "1 flow file checked: 1 error, 0 warnings"


def test_several_loader_errors_are_reported_at_once(run: Run, tmp_path: Path) -> None:
    text = _VALID.replace('key: "1"', 'key: "12"').replace("type: hangup", "type: hang_up")
    path = _write(tmp_path, "demo.yaml", text)
    result = run("validate", str(path))
    assert result.status == 1
    # The bad key, the unknown type, and both references to the node that is now missing.
    lines = [line.split(": ")[0].removeprefix(f"{path}:") for line in result.lines[:-1]]
    assert lines == ["5", "12", "13", "15"]


def test_a_yaml_syntax_error_is_reported_at_its_line(run: Run, tmp_path: Path) -> None:
    path = _write(tmp_path, "demo.yaml", _VALID.replace('key: "1"', "key: *"))
    result = run("validate", str(path))
    assert result.status == 1
    assert result.lines[0].startswith(f"{path}:12: error: yaml: ")


def test_a_dead_end_is_an_error_at_the_node_where_the_call_enters_it(
    run: Run, tmp_path: Path
) -> None:
    text = _VALID + textwrap.indent(
        textwrap.dedent("""\
        hold:
          type: say
          prompt: Please hold.
          wait_for_playback: true
          next: pause
        pause:
          type: wait
          duration_ms: 1000
          next: hold
        """),
        "  ",
    )
    text = text.replace("next: bye\n  bye:", "next: hold\n  bye:")
    path = _write(tmp_path, "demo.yaml", text)
    result = run("validate", str(path))
    assert result.status == 1
    assert result.lines == [
        f"{path}:17: error: node 'hold': dead end: no path from here reaches a hangup or a "
        "transfer, so the call can never end (from here it can only reach: pause)",
        "1 flow file checked: 1 error, 0 warnings",
    ]


def test_warnings_pass_unless_strict(run: Run, tmp_path: Path) -> None:
    text = _VALID + "  orphan:\n    type: hangup\n    prompt: Nobody gets here.\n"
    path = _write(tmp_path, "demo.yaml", text)
    warning = (
        f"{path}:17: warning: node 'orphan': unreachable: no path from start 'menu' leads here"
    )
    relaxed = run("validate", str(path))
    assert (relaxed.status, relaxed.lines[0]) == (0, warning)
    assert relaxed.lines[-1] == "1 flow file checked: 0 errors, 1 warning"
    strict = run("validate", "--strict", str(path))
    assert (strict.status, strict.lines[0]) == (1, warning)


def test_a_directory_is_checked_as_a_whole_too(run: Run, tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", _VALID)
    _write(tmp_path, "b.yaml", _VALID)
    _write(tmp_path, "routing.yaml", "default: nowhere\n")
    result = run("validate", str(tmp_path))
    assert result.status == 1
    assert (
        result.lines[0]
        == f"{tmp_path / 'b.yaml'}:1: error: flow: flow id 'demo' is also used by {tmp_path / 'a.yaml'}"
    )
    assert result.lines[-1] == "2 flow files checked: 1 error, 0 warnings"
    (tmp_path / "b.yaml").unlink()
    routed = run("validate", str(tmp_path))
    assert routed.status == 1
    assert routed.lines[0] == (
        f"{tmp_path / 'routing.yaml'}:1: error: routing.default: unknown flow 'nowhere' "
        "(expected one of: demo)"
    )


def test_conversation_tests_beside_the_flows_are_not_read_as_flows(
    run: Run, tmp_path: Path
) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(DEMO_FLOWS, flows)
    assert (flows / "tests").is_dir()
    assert run("validate", str(flows)).status == 0


def test_every_broken_file_is_reported_in_one_run(run: Run, tmp_path: Path) -> None:
    good = _write(tmp_path, "good.yaml", _VALID)
    bad = _write(tmp_path, "bad.yaml", _VALID.replace("start: menu", "start: nowhere"))
    result = run("validate", str(bad), str(good), str(DEMO_FLOWS / "survey.yaml"))
    assert result.status == 1
    assert result.lines[0].startswith(f"{bad}:3: error: flow.start: unknown node 'nowhere'")
    assert result.lines[-1] == "3 flow files checked: 1 error, 0 warnings"


def test_a_missing_path_exits_2(run: Run, tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.status == 2
    assert "nope.yaml: no such file or directory" in result.err


def test_no_path_is_a_usage_error(run: Run) -> None:
    with pytest.raises(SystemExit) as exited:
        run("validate")
    assert exited.value.code == 2


# Flow texts both readers must judge alike. libyaml (the server's parser) and PyYAML's
# pure-Python parser disagree on some of these; `dialogue validate` must side with the server.
_TRICKY_YAML = {
    "a '?' in a flow mapping's plain scalar": _VALID.replace(
        "prompt: Goodbye.", "prompt: {tts: Which day?}"
    ),
    "a '?' in a flow sequence": _VALID.replace("prompt: Goodbye.", "prompt: [Which day?]"),
    "a tab after a colon": _VALID.replace("prompt: Goodbye.", "prompt:\tGoodbye."),
    "a duplicate key": _VALID.replace("prompt: Goodbye.", "prompt: Goodbye.\n    prompt: Bye."),
    "an unclosed flow sequence": _VALID.replace("prompt: Goodbye.", "prompt: [Goodbye."),
    "a bad escape": _VALID.replace("prompt: Goodbye.", 'prompt: "Good\\qbye."'),
    "a colon inside a flow mapping value": _VALID.replace(
        "prompt: Goodbye.", "prompt: {tts: a: b}"
    ),
    "not a mapping": "- just\n- a list\n",
}


@pytest.mark.parametrize("case", sorted(_TRICKY_YAML))
def test_validate_and_the_server_accept_and_refuse_the_same_yaml(
    run: Run, tmp_path: Path, case: str
) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(_TRICKY_YAML[case], encoding="utf-8")
    try:
        load_flow_file(path)
        server_accepts = True
    except FlowError:
        server_accepts = False
    result = run("validate", str(path))
    assert result.err == ""  # never a traceback
    assert (result.status == 0) is server_accepts, result.out
