"""The Makefile's set-up: the targets a reader runs first install what the tools need."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Bounds a hung make only (a dry run executes nothing).
_MAKE_BOUND_S = 60


@pytest.mark.parametrize("target", ["run", "setup", "test"])
def test_the_target_installs_the_debian_packages_graph_and_the_tests_need(target: str) -> None:
    make = shutil.which("make")
    assert make is not None, "make is needed to build this project"
    dry_run = subprocess.run(
        [make, "-n", target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=_MAKE_BOUND_S,
        check=True,
    )
    assert "apt-get install" in dry_run.stdout
    for package in ("graphviz", "fonts-wqy-zenhei", "redis-server"):
        assert package in dry_run.stdout
