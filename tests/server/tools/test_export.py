"""`dialogue export`: the call history of a store as JSON lines, replayable offline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from server.tools.__main__ import main
from tests.support.grpc_server import request, serve


async def _record_calls(url: str) -> None:
    async with serve(url) as served:
        for call in ("a", "b"):
            await served.decide(request(call, f"{call}1", call_started={}))
            await served.decide(request(call, f"{call}2", digits_entered={"digits": "1"}))


def test_export_writes_every_turn_of_every_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path / 'calls.db'}"
    asyncio.run(_record_calls(url))
    out = tmp_path / "turns.jsonl"
    assert main(["export", "--store", url, "-o", str(out)]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(line["call_id"], line["number"]) for line in lines] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("b", 2),
    ]
    assert lines[1]["request"]["digits_entered"] == {"digits": "1"}
    assert lines[1]["response"]["diagnostics"]["node_id"] == "bill_phone"
    assert "exported 4 turns" in capsys.readouterr().err

    one_call = tmp_path / "a.jsonl"
    one_call.write_text(
        "".join(json.dumps(line) + "\n" for line in lines if line["call_id"] == "a"),
        encoding="utf-8",
    )
    assert main(["replay", "--from-file", str(one_call)]) == 0


def test_export_of_some_calls_and_a_bad_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite://{tmp_path / 'calls.db'}"
    asyncio.run(_record_calls(url))
    assert main(["export", "--store", url, "--call", "b"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {line["call_id"] for line in printed} == {"b"}
    assert main(["export", "--store", "mongodb://nope"]) == 2
