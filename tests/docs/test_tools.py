"""docs/tools.md's terminal sessions run as written and print what the guide shows.

A session is a plain ``` block whose first line starts with `$ `. It runs as one bash script, in
a fresh directory that looks like the repository root to it (`flows` and `.venv` linked in, an
empty `docs/flows/graphs/` to draw into), so the guide's relative paths and its
`source .venv/bin/activate` work as they do for a reader. A YAML file the first command names
and that does not exist is the guide's ```yaml block just before the session. The output
(stdout and stderr, as a terminal shows them) must be the session's other lines; a line that is
only `…` stands for any lines.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docs.blocks import fenced_blocks

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDE = REPO_ROOT / "docs" / "tools.md"
_ANY_LINES = "…"
# Bounds a hung command only.
_SESSION_BOUND_S = 120

# Sessions the test cannot run as written, by text they contain, and why. Each must match one.
NOT_RUN = {
    "unknown node 'trak'": "the misspelt flow is described in prose, not shown",
    "dialogue replay": "replays a call recorded on a server the guide does not start",
}


@dataclass(frozen=True, slots=True)
class Session:
    """One terminal session of the guide: its script, the output shown, and its context."""

    line: int
    script: str
    expected: tuple[str, ...]
    previous_yaml: str | None

    def first_command(self) -> str:
        """The first command after the venv is activated: what the session is about."""
        commands = [line for line in self.script.splitlines() if not line.startswith("source ")]
        return commands[0]


def sessions(guide: str) -> list[Session]:
    """Every session of the guide, in order, with the ```yaml block before each."""
    found = []
    previous_yaml = None
    for block in fenced_blocks(guide):
        if block.language == "yaml":
            previous_yaml = block.body
        elif not block.language and block.body.startswith("$ "):
            lines = block.body.splitlines()
            commands = [line[2:] for line in lines if line.startswith("$ ")]
            expected = tuple(line for line in lines if not line.startswith("$ "))
            found.append(Session(block.line, "\n".join(commands), expected, previous_yaml))
    return found


def _not_run_reason(session: Session) -> str | None:
    text = "\n".join([session.script, *session.expected])
    return next((why for marker, why in NOT_RUN.items() if marker in text), None)


def output_pattern(expected: tuple[str, ...]) -> re.Pattern[str]:
    """The output a session shows, as a pattern: literal lines, `…` lines for any lines."""
    parts = [
        r"(?:[^\n]*\n)*?" if line == _ANY_LINES else re.escape(line) + r"\n" for line in expected
    ]
    return re.compile("".join(parts))


_SESSIONS = sessions(GUIDE.read_text(encoding="utf-8"))
_RUN = [session for session in _SESSIONS if _not_run_reason(session) is None]


def test_the_guide_has_sessions_for_every_offline_subcommand_and_each_not_run_is_explained() -> (
    None
):
    run = " ".join(session.first_command() for session in _RUN)
    for subcommand in ("validate", "chat", "test", "graph"):
        assert f"dialogue {subcommand} " in run
    for marker, why in NOT_RUN.items():
        assert any(_not_run_reason(session) == why for session in _SESSIONS), marker
    assert _SESSIONS[0].script.startswith("source .venv/bin/activate\n"), (
        "the guide's first session activates the venv, so its examples run as written"
    )


@pytest.mark.parametrize("session", _RUN, ids=[f"tools.md:{s.line}" for s in _RUN])
def test_a_session_prints_what_the_guide_shows(session: Session, tmp_path: Path) -> None:
    (tmp_path / "flows").symlink_to(REPO_ROOT / "flows")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    (tmp_path / "docs" / "flows" / "graphs").mkdir(parents=True)
    for word in shlex.split(session.first_command()):
        if word.endswith(".yaml") and not (tmp_path / word).exists():
            assert session.previous_yaml is not None, f"tools.md:{session.line}: no file {word}"
            (tmp_path / word).write_text(session.previous_yaml, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    # The demo flows through the link, so the tools name them `flows/…` as they do when run
    # from the repository root (they show paths relative to the working directory).
    env |= {"DIALOGUE_FLOWS": "flows", "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}
    ran = subprocess.run(
        ["bash", "-c", f"source .venv/bin/activate\n{session.script}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=_SESSION_BOUND_S,
        check=False,
    )
    assert output_pattern(session.expected).fullmatch(ran.stdout), (
        f"tools.md:{session.line} shows:\n"
        + "\n".join(session.expected)
        + f"\n\nbut it printed:\n{ran.stdout}"
    )


def test_the_export_example_shows_the_keys_in_the_order_export_writes_them() -> None:
    example = next(
        block.body
        for block in fenced_blocks(GUIDE.read_text(encoding="utf-8"))
        if block.language == "json" and '"call_id"' in block.body
    )
    # The elisions out, the rest is JSON whose keys must already be sorted (export sorts them).
    readable = re.sub(r", …", "", example.replace("{…}", "{}").replace("…, ", ""))
    parsed = json.loads(readable)
    assert json.dumps(parsed, ensure_ascii=False) == json.dumps(
        parsed, ensure_ascii=False, sort_keys=True
    )
    assert list(parsed) == ["call_id", "number", "request", "response"]


def test_a_lone_ellipsis_line_stands_for_any_lines_and_others_are_literal() -> None:
    pattern = output_pattern(("first", _ANY_LINES, "last (…)"))
    assert pattern.fullmatch("first\nlast (…)\n")
    assert pattern.fullmatch("first\na\nb\nlast (…)\n")
    assert not pattern.fullmatch("first\nlast (x)\n")


def test_the_mermaid_example_is_the_committed_drawing_of_carrier_zh() -> None:
    example = next(
        block.body
        for block in fenced_blocks(GUIDE.read_text(encoding="utf-8"))
        if block.language == "mermaid"
    )
    # tests/server/tools/test_graph.py checks the committed drawing against the flow.
    drawing = REPO_ROOT / "docs" / "flows" / "graphs" / "carrier-zh.mmd"
    assert example == drawing.read_text(encoding="utf-8")
