"""The `dialogue` command itself: subcommands listed, usage errors, the installed console script."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.server.tools.conftest import Run
from tests.support.server_process import REPO_ROOT

SUBPROCESS_TIMEOUT_S = 120
SUBCOMMANDS = ("validate", "chat", "test", "graph", "replay")


def test_help_lists_every_subcommand(run: Run) -> None:
    with pytest.raises(SystemExit) as exited:
        run("--help")
    assert exited.value.code == 0


def test_a_subcommand_is_required(run: Run) -> None:
    with pytest.raises(SystemExit) as exited:
        run()
    assert exited.value.code == 2


def test_python_m_server_tools_help() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "server.tools", "--help"],
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0
    out = completed.stdout.decode()
    assert out.startswith("usage: dialogue ")
    for name in SUBCOMMANDS:
        assert name in out


def test_the_console_script_when_installed() -> None:
    scripts = entry_points(group="console_scripts", name="dialogue")
    if not scripts:
        pytest.skip(
            'console script not installed: pyproject needs dialogue = "server.tools.__main__:main"'
        )
    (script,) = scripts
    assert script.value == "server.tools.__main__:main"
    program = Path(sys.executable).parent / "dialogue"
    completed = subprocess.run(
        [str(program), "validate", "flows"],
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout.decode() + completed.stderr.decode()
