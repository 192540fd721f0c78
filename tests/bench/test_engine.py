"""`bench.engine`: the pure engine per decision, and an earlier commit's engine in the same run.

Timings here mean nothing and nothing looks at their size: the tests check that both engines
are measured, each from its own tree, and that the figure compares them and the budget.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from bench import engine
from bench.config import BenchConfig
from bench.context import Context

TINY = BenchConfig().tiny()


def _known(rev: str) -> bool:
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{rev}^{{commit}}"], cwd=engine.REPO_ROOT, check=False
    )
    return found.returncode == 0


def test_the_engine_here_is_measured_per_decision() -> None:
    cost = engine.measure(3)

    assert cost.decide_us > 0
    assert cost.codec_us > 0


def test_an_earlier_tree_is_extracted_and_measured_in_its_own_process(tmp_path: Path) -> None:
    if not _known("HEAD"):
        pytest.skip("not a git clone")
    engine.extract("HEAD", tmp_path)

    assert (tmp_path / "server" / "engine" / "interpreter.py").is_file()
    assert (tmp_path / "flows" / "carrier-zh.yaml").is_file()
    cost = engine.measure_in_child(3, tmp_path)
    assert cost.decide_us > 0


def test_an_unknown_commit_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="git archive"):
        engine.extract("no-such-commit-anywhere", tmp_path)


def test_the_figure_holds_the_engine_to_its_budget_and_to_the_earlier_engine(
    tmp_path: Path,
) -> None:
    figure = engine.run(Context(replace(TINY, duration_s=0.05), tmp_path, quiet=True))

    budget = next(r for r in figure.ratios if r.baseline_label == "40 µs budget")
    assert budget.target is not None
    assert budget.value > 0
    earlier = [r for r in figure.ratios if r.baseline_label == f"engine of {engine.BEFORE_REV}"]
    if _known(engine.BEFORE_REV):
        assert len(earlier) == 2
        assert all(r.value > 0 and r.baseline > 0 for r in earlier)
    else:
        assert not earlier
        assert any(engine.BEFORE_REV in note for note in figure.notes)
