"""The turn record's byte encoding (Redis and memory stores): round trips, old format, garbage."""

from __future__ import annotations

import struct

import pytest

from server.store import TurnRecord
from server.store.records import decode_turn, encode_turn, turn_key


@pytest.mark.parametrize(
    "record",
    [
        TurnRecord(1, "", b"", b""),
        TurnRecord(2**40, "请求-1 ^{}", b"\x00" * 3, bytes(range(256))),
        TurnRecord(3, "r", b"x" * 70_000, b"\xff" * 70_000),
    ],
)
def test_a_record_round_trips_and_its_key_reads_without_decoding(record: TurnRecord) -> None:
    encoded = encode_turn(record)
    assert decode_turn(encoded) == record
    assert turn_key(encoded) == (record.number, record.request_id.encode())
    assert len(encoded) == 17 + len(record.request_id.encode()) + len(record.request) + len(
        record.response
    )


def test_format_1_with_its_digest_is_still_read() -> None:
    header = struct.pack(">BqIII", 1, 5, len("req-5"), len("digest"), len("request"))
    decoded = decode_turn(header + b"req-5digestrequestresponse")
    assert decoded == TurnRecord(5, "req-5", b"request", b"response")


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x09" + b"\x00" * 30, struct.pack(">BqII", 2, 1, 5, 1000) + b"short"],
)
def test_what_is_not_a_record_decodes_to_none(garbage: bytes) -> None:
    assert decode_turn(garbage) is None
