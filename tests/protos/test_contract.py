"""The contract itself: lint-clean, documented, and the committed generated code is fresh."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

from dialogue.v1 import dialogue_pb2
from tests.support.server_process import REPO_ROOT

PROTOS = REPO_ROOT / "protos"
GENERATED = REPO_ROOT / "gen" / "python"
BUF = REPO_ROOT / "node_modules" / ".bin" / "buf"
_BOUND_S = 120


def test_buf_lint_is_clean_with_comment_rules() -> None:
    result = subprocess.run(
        [str(BUF), "lint"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=_BOUND_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_committed_generated_code_matches_the_protos(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    protos = sorted(str(path.relative_to(PROTOS)) for path in PROTOS.rglob("*.proto"))
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
            f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}",
            f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
            f"--mypy_out={tmp_path}", f"--mypy_grpc_out={tmp_path}", *protos,
        ],
        check=True,
        timeout=_BOUND_S,
    )  # fmt: skip
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(GENERATED)
        for p in GENERATED.rglob("*")
        if p.is_file()
        and p.name not in ("__init__.py", "py.typed")
        and "__pycache__" not in p.parts
    )
    assert fresh == committed, "run `make gen` and commit gen/python"
    stale = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, GENERATED / p, shallow=False)]
    assert not stale, f"generated code is stale: {stale}; run `make gen` and commit gen/python"


def test_the_python_package_is_importable_from_the_proto_root() -> None:
    assert dialogue_pb2.DESCRIPTOR.package == "dialogue.v1"
    assert shutil.which("node") is not None, "node is needed by the cross-language client test"
