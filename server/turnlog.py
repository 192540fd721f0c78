"""How a turn's request is kept in the turn log: without the ids its record and its call carry.

Every turn of every call is kept (up to the store's max_turns), so whatever the log repeats is
paid for on every turn: the request id is the turn record's own key and the call id the call's,
so the stored request leaves both out and `restored` puts them back. A request stored whole, as
earlier versions did, reads the same: restoring sets what it already holds.
"""

from __future__ import annotations

from dialogue.v1 import dialogue_pb2 as pb
from server.store import TurnRecord


def compact(request: pb.DecideNextActionRequest) -> bytes:
    """The request as the turn log keeps it: without its request id and call id."""
    kept = pb.DecideNextActionRequest()
    kept.CopyFrom(request)
    kept.ClearField("request_id")
    kept.call.ClearField("call_id")
    return kept.SerializeToString(deterministic=True)


def restored(turn: TurnRecord, call_id: str) -> pb.DecideNextActionRequest:
    """The whole request of a turn of call_id, as the platform sent it (field for field)."""
    request = pb.DecideNextActionRequest.FromString(turn.request)
    request.request_id = turn.request_id
    request.call.call_id = call_id
    return request
