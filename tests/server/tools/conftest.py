"""Running `dialogue` in-process, as a test sees it: exit status, stdout and stderr."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from server.tools.__main__ import main


@dataclass(frozen=True)
class Result:
    """What one `dialogue …` run did."""

    status: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


Run = Callable[..., Result]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    """`run("validate", "flows", stdin="...")`: main() in-process with its output captured."""

    def invoke(*argv: str, stdin: str = "") -> Result:
        capsys.readouterr()  # drop anything printed before this run
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        status = main(list(argv))
        captured = capsys.readouterr()
        return Result(status, captured.out, captured.err)

    return invoke
