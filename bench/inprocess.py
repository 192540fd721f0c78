"""`python -m bench.inprocess`: a service-layer lever measured before/after in one run, no gRPC.

The carrier script goes through `DialogueService` (validation, store, engine, metrics, the log
line) with a SQLite store, sequentially (×1) and 16 calls at a time (×16). "before" routes each
SQLite write through the store's one-thread executor, as the store did until the loop-thread
write; "after" is the store as it is. The two take turns for REPEATS rounds; medians of wall
and process CPU time per decision are printed, with their ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from bench.workload import SCRIPTS, decide_request
from server.config import DEMO_FLOWS
from server.engine.catalog import Catalog, load_catalog
from server.service import DialogueService
from server.store import TurnRecord
from server.store import sqlite as sqlite_store

REPEATS = 3
CONCURRENCIES = (1, 16)
Write = Callable[..., Awaitable[bool]]


async def _executor_write(
    self: sqlite_store.SqliteStore,
    call_id: str,
    expected_version: int,
    state: bytes,
    turn: TurnRecord,
    *,
    ended: bool = False,
) -> bool:
    """The write as it was: one hop to the store's thread per write."""
    now = self._clock()
    expires_at = self._expiry.expires_at(now, ended=ended)
    return await self._run(
        lambda conn: sqlite_store._write(
            conn,
            call_id,
            expected_version,
            state,
            turn,
            max_turns=self._max_turns,
            now=now,
            expires_at=expires_at,
            ended=ended,
        )
    )


async def _measure(
    catalog: Catalog, calls: Sequence[Sequence[bytes]], db: Path, concurrency: int
) -> tuple[float, float]:
    """(wall µs, process CPU µs) per decision over every call."""
    store = sqlite_store.SqliteStore(db)
    service = DialogueService(catalog, store)
    gate = asyncio.Semaphore(concurrency)

    async def one(call: Sequence[bytes]) -> None:
        async with gate:
            for raw in call:
                await service._decide_next_action(raw)

    await one([decide_request("carrier", "warm-up", s).SerializeToString() for s in range(6)])
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one(call) for call in calls))
    decisions = sum(len(call) for call in calls)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await store.close()
    return wall / decisions * 1e6, cpu / decisions * 1e6


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="carrier calls per measurement")
    args = parser.parse_args(argv)
    catalog = load_catalog(DEMO_FLOWS)
    steps = len(SCRIPTS["carrier"])
    calls = [
        [decide_request("carrier", f"c{i}", s).SerializeToString() for s in range(steps)]
        for i in range(max(1, args.calls))
    ]
    variants: dict[str, Write] = {
        "before": _executor_write,
        "after": sqlite_store.SqliteStore.write,
    }
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="dialogue-inprocess-") as scratch:
        for repeat in range(REPEATS):
            for name, write in variants.items():
                sqlite_store.SqliteStore.write = write  # type: ignore[method-assign,assignment]
                for concurrency in CONCURRENCIES:
                    db = Path(scratch) / f"{name}-{concurrency}-{repeat}.db"
                    runs.setdefault((name, concurrency), []).append(
                        asyncio.run(_measure(catalog, calls, db, concurrency))
                    )
        sqlite_store.SqliteStore.write = variants["after"]  # type: ignore[method-assign,assignment]
    for concurrency in CONCURRENCIES:
        (bw, bc), (aw, ac) = (
            (
                statistics.median(w for w, _ in runs[name, concurrency]),
                statistics.median(c for _, c in runs[name, concurrency]),
            )
            for name in variants
        )
        print(
            f"SQLite write on the loop thread, ×{concurrency}: wall {bw:.0f} → {aw:.0f} µs "
            f"({aw / bw:.2f}×), CPU {bc:.0f} → {ac:.0f} µs ({ac / bc:.2f}×) per decision"
        )


if __name__ == "__main__":
    main()
