"""bench.ab: variants parsed, revisions exported, one tiny before/after run printed."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.ab import Variant, export, main
from bench.procs import REPO_ROOT


def test_a_variant_is_a_name_a_revision_and_server_arguments() -> None:
    assert Variant.parse("before=HEAD~1") == Variant("before", "HEAD~1")
    assert Variant.parse("two=.,--workers,2") == Variant("two", ".", ("--workers", "2"))
    for bad in ("HEAD", "=HEAD", "name="):
        with pytest.raises(argparse.ArgumentTypeError):
            Variant.parse(bad)


def test_revisions_are_exported_and_directories_taken_as_they_are(tmp_path: Path) -> None:
    assert export(".", tmp_path) == REPO_ROOT
    assert export(str(tmp_path), tmp_path / "trees") == tmp_path.resolve()
    tree = export("HEAD", tmp_path / "trees")
    assert (tree / "server" / "__main__.py").is_file()
    assert export("HEAD", tmp_path / "trees") == tree  # exported once


def test_a_tiny_run_prints_one_row_per_variant(capsys: pytest.CaptureFixture[str]) -> None:
    main(["a=.", "--rounds", "1", "--duration", "0.2", "--warmup", "0.05", "--concurrency", "2"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| a |")]
    assert len(rows) == 1
    assert rows[0].endswith("| 1.00× | 0 |")
