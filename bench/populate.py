"""Filling a session store with active calls directly through the store API (no gRPC)."""

from __future__ import annotations

import asyncio
import functools
import time
from dataclasses import dataclass, replace
from typing import Final

from bench.workload import carrier_walk
from dialogue.v1 import dialogue_pb2 as pb
from server.engine.state import CallState, encode
from server.store import SessionStore, TurnRecord
from server.turnlog import compact

# At most this many writes in flight: the Redis store's pool holds 100 connections and fails
# (rather than waits) beyond them.
_BATCH: Final = 64


@dataclass(frozen=True, slots=True)
class Template:
    """One carrier call's first turns: the state after each and the turn records.

    `requests` are as the turn log keeps them (server.turnlog.compact: without the ids), so the
    same for every call id.
    """

    states: tuple[CallState, ...]
    requests: tuple[bytes, ...]
    responses: tuple[bytes, ...]

    @staticmethod
    @functools.cache
    def of(turns: int) -> Template:
        """The first `turns` turns of the carrier script (computed once per count)."""
        walk = carrier_walk()[:turns]
        return Template(
            tuple(state for state, _, _ in walk),
            tuple(
                compact(pb.DecideNextActionRequest.FromString(request)) for _, request, _ in walk
            ),
            tuple(response for _, _, response in walk),
        )

    def records(self, call_id: str) -> list[tuple[bytes, TurnRecord]]:
        """(encoded state, turn) of each turn, for one call id."""
        out = []
        for number, (state, request, response) in enumerate(
            zip(self.states, self.requests, self.responses, strict=True), start=1
        ):
            request_id = f"{call_id}-r{number - 1}"
            out.append(
                (
                    encode(replace(state, call_id=call_id)),
                    # Fresh objects (bytes(b) would be b itself), as a server's turns are: what
                    # an in-process store keeps is then counted for every call.
                    TurnRecord(
                        number,
                        request_id,
                        bytes(bytearray(request)),
                        bytes(bytearray(response)),
                    ),
                )
            )
        return out

    def payload_bytes(self, call_id: str) -> int:
        """Bytes a store must keep for one call: the last state and every turn record."""
        records = self.records(call_id)
        turns = sum(len(t.request) + len(t.response) + len(t.request_id) + 8 for _, t in records)
        return len(records[-1][0]) + turns


# The bench fills stores, it does not measure them: a busy machine must not fail it.
_FILL_TIMEOUT_S: Final = 30


def fill_url(url: str) -> str:
    """The store URL for filling: Redis with generous timeouts (the store's own default is
    0.5 s, so that an outage fails fast; redis-py reads them from the URL's query)."""
    if not url.startswith(("redis://", "rediss://")):
        return url
    separator = "&" if "?" in url else "?"
    return (
        f"{url}{separator}socket_timeout={_FILL_TIMEOUT_S}&socket_connect_timeout={_FILL_TIMEOUT_S}"
    )


def call_id(prefix: str, index: int) -> str:
    return f"{prefix}-{index:07d}"


async def _one(store: SessionStore, template: Template, cid: str) -> None:
    for version, (state, turn) in enumerate(template.records(cid)):
        if not await store.write(cid, version, state, turn):
            raise RuntimeError(f"populating {cid}: the store refused turn {turn.number}")


async def populate(
    store: SessionStore, calls: int, turns: int, prefix: str, *, start: int = 0
) -> float:
    """Writes `calls` calls of `turns` turns each; returns the seconds it took."""
    template = Template.of(turns)
    began = time.perf_counter()
    for first in range(start, start + calls, _BATCH):
        last = min(first + _BATCH, start + calls)
        await asyncio.gather(
            *(_one(store, template, call_id(prefix, index)) for index in range(first, last))
        )
    return time.perf_counter() - began
