"""docs/flows.md section 10: the server's start-up errors for the broken carrier-zh copy are the
ones the guide shows, line numbers included."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.docs.blocks import fenced_blocks

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDE = REPO_ROOT / "docs" / "flows.md"
COMMAND = "$ dialogue-server --flows flows --store memory://"
# The guide's "five mistakes", each made once (at its first occurrence) in a copy of the flow.
MISTAKES = (
    ("max_no_match: 3", "max_no_match: three"),
    ('key: "2"', 'key: "1"'),
    ("max_length: 11", "max_lenght: 11"),
    ("next: bill_answer", "next: bill_answr"),
    ("{phone}本月", "{phone_number}本月"),
)
_LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR dialogue\.server: refusing to start: invalid flow:$"
)
# Bounds a hung server only: with invalid flows it exits before it listens.
_START_BOUND_S = 120


def _shown() -> list[str]:
    session = next(
        b.body for b in fenced_blocks(GUIDE.read_text("utf-8")) if b.body.startswith(COMMAND)
    )
    return session.splitlines()


def test_the_start_up_errors_are_the_ones_the_guide_shows(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "flows", tmp_path / "flows")
    flow = tmp_path / "flows" / "carrier-zh.yaml"
    text = flow.read_text("utf-8")
    for right, wrong in MISTAKES:
        assert right in text, f"carrier-zh.yaml has no {right!r} any more: update the guide"
        text = text.replace(right, wrong, 1)
    flow.write_text(text, "utf-8")
    server = Path(sys.executable).parent / "dialogue-server"
    ran = subprocess.run(
        [str(server), *COMMAND.split()[2:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=_START_BOUND_S,
        check=False,
    )
    shown = _shown()
    assert shown[-2:] == ["$ echo $?", "2"]
    assert ran.returncode == 2, ran.stderr
    printed = ran.stderr.splitlines()
    assert _LOG_LINE.match(printed[0]), printed[0]
    assert _LOG_LINE.match(shown[1]), shown[1]
    assert printed[1:] == shown[2:-2]
