"""The Dockerfile copies every package the project installs (a missing one breaks the image)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_installed_package_is_copied_into_the_build() -> None:
    found = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    patterns = found["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY (\S+) \1$", (ROOT / "Dockerfile").read_text("utf-8"), re.M))
    for pattern in patterns:
        package = pattern.rstrip("*")
        # Generated packages (dialogue.v1) come with gen/, the rest from their own directory.
        source = "gen" if (ROOT / "gen" / "python" / package).is_dir() else package
        assert source in copied, f"Dockerfile: no `COPY {source} {source}` for {pattern}"
