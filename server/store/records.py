"""A turn record as one byte string: how the Redis and memory stores keep each turn.

Format 2: a 17-byte header — format (1 byte), turn number (8), the byte lengths of the request
id (4) and of the request (4), big-endian — then the request id, the request and the response,
which takes the rest. Raw bytes, not JSON with base64, because request and response are
protobufs: base64 would add a third to the bulk of what a call keeps, and the fixed header is
all the overhead there is. Format 1, which earlier versions wrote to Redis, also kept a digest
of the event after the request id (its length in a 21-byte header); it is still read.
"""

from __future__ import annotations

import struct
from typing import Final

from server.store.base import TurnRecord

_HEADER: Final = struct.Struct(">BqII")
_FORMAT: Final = 2
_HEADER_V1: Final = struct.Struct(">BqIII")
_FORMAT_V1: Final = 1


def encode_turn(turn: TurnRecord) -> bytes:
    """The record as one byte string (format 2)."""
    request_id = turn.request_id.encode()
    header = _HEADER.pack(_FORMAT, turn.number, len(request_id), len(turn.request))
    return b"".join((header, request_id, turn.request, turn.response))


def turn_key(record: bytes) -> tuple[int, bytes]:
    """(turn number, request id as UTF-8) of a format-2 record, without decoding the rest."""
    _, number, request_id_size, _ = _HEADER.unpack_from(record)
    return number, record[_HEADER.size : _HEADER.size + request_id_size]


def decode_turn(record: bytes) -> TurnRecord | None:
    """The TurnRecord `encode_turn` made (now or as format 1), or None when record is not one."""
    if record[:1] == bytes((_FORMAT_V1,)) and len(record) >= _HEADER_V1.size:
        _, number, request_id_size, skipped, request_size = _HEADER_V1.unpack_from(record)
        start = _HEADER_V1.size
    elif record[:1] == bytes((_FORMAT,)) and len(record) >= _HEADER.size:
        _, number, request_id_size, request_size = _HEADER.unpack_from(record)
        start, skipped = _HEADER.size, 0
    else:
        return None
    request_start = start + request_id_size + skipped
    response_start = request_start + request_size
    if response_start > len(record):
        return None
    try:
        request_id = record[start : start + request_id_size].decode()
    except UnicodeDecodeError:
        return None
    return TurnRecord(
        number=number,
        request_id=request_id,
        request=record[request_start:response_start],
        response=record[response_start:],
    )
