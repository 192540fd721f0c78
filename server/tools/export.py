"""`dialogue export`: every call's turns from a session store, as JSON lines for analytics."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TextIO

from google.protobuf import json_format

from dialogue.v1 import dialogue_pb2 as pb
from server.store import SessionStore, StoreUnavailableError, open_store
from server.tools.common import ToolError
from server.turnlog import restored


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "export",
        help="write every call's turns from a store as JSON lines",
        description=(
            "Read the call history straight from a session store (an SQLite file or Redis) and "
            "write one JSON object per turn: call_id, number, request and response in proto "
            "JSON. A call's lines can be fed to `dialogue replay --from-file`."
        ),
    )
    parser.add_argument(
        "--store", required=True, help="the store URL, as given to dialogue-server --store"
    )
    parser.add_argument(
        "--call", action="append", metavar="CALL_ID", help="only these calls (repeatable)"
    )
    parser.add_argument("-o", "--out", type=Path, help="write here instead of standard output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        store = open_store(args.store)
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    out = args.out.open("w", encoding="utf-8") if args.out else sys.stdout
    try:
        count = asyncio.run(_export(store, args.call, out))
    except StoreUnavailableError as exc:
        raise ToolError(f"store unavailable: {exc}") from exc
    finally:
        if args.out:
            out.close()
    print(f"exported {count} turns", file=sys.stderr)
    return 0


async def _export(store: SessionStore, only: list[str] | None, out: TextIO) -> int:
    count = 0
    try:
        calls = only if only else [call_id async for call_id in store.call_ids()]
        for call_id in sorted(calls):
            for turn in await store.turns(call_id):
                record = {
                    "call_id": call_id,
                    "number": turn.number,
                    "request": _json(restored(turn, call_id)),
                    "response": _json(pb.DecideNextActionResponse.FromString(turn.response)),
                }
                out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
                count += 1
    finally:
        await store.close()
    return count


def _json(message: pb.DecideNextActionRequest | pb.DecideNextActionResponse) -> dict[str, object]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)
