"""The turn log's kept request: the ids left out, and put back field for field."""

from __future__ import annotations

from dialogue.v1 import dialogue_pb2 as pb
from server.store import TurnRecord
from server.turnlog import compact, restored
from tests.support.grpc_server import request


def test_the_kept_request_leaves_out_the_ids_and_restoring_puts_them_back() -> None:
    sent = request("call-42", "req-7", digits_entered={"digits": "13800138000"})
    kept = compact(sent)
    parsed = pb.DecideNextActionRequest.FromString(kept)
    assert parsed.request_id == ""
    assert parsed.call.call_id == ""
    assert len(kept) < len(sent.SerializeToString())
    assert restored(TurnRecord(3, "req-7", kept, b""), "call-42") == sent


def test_a_request_kept_whole_by_earlier_versions_restores_unchanged() -> None:
    sent = request("call-42", "req-7", call_started={})
    whole = TurnRecord(1, "req-7", sent.SerializeToString(), b"")
    assert restored(whole, "call-42") == sent
