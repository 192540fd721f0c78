"""Reloading the flows directory while serving: on SIGHUP and when its files change.

A reload loads the whole directory and swaps the service's catalog in one assignment, so an
RPC sees either the old catalog or the new one, never a mix. New calls get the new versions;
calls in progress find the version they started with among the versions the catalog keeps
(`Catalog.succeeded_by`). If any file is invalid, or a flow changed without a new version,
the reload is rejected as a whole: the problems are logged at ERROR and the running versions
stay live (health is untouched: the server is still serving correctly).

Changes are noticed by polling a content hash of every flow file rather than by inotify, which
needs no dependency and works the same on every filesystem and container mount.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from server.engine.catalog import DEFAULT_KEEP_VERSIONS, Catalog, load_catalog
from server.engine.loader import SUBFLOWS_DIR, FlowError

_log = logging.getLogger("dialogue.reload")

# File name → content digest (or a read error), of the files a catalog is loaded from.
Fingerprint = dict[str, str]


class CatalogOwner(Protocol):
    """Whatever serves from a catalog and reads it afresh for each request (DialogueService)."""

    catalog: Catalog


class Outcome(enum.Enum):
    """What one reload attempt did."""

    RELOADED = "reloaded"
    UNCHANGED = "unchanged"
    REJECTED = "rejected"
    # A poll saw files change since the previous poll; it waits for them to stay put.
    SETTLING = "settling"


def fingerprint(directory: Path) -> Fingerprint:
    """A digest of every file `load_catalog` reads from directory (flows, subflows, routing).

    Content, not mtimes: an edit within one mtime tick, or a copy that preserves mtimes, still
    changes it. Flow files are small (at most 4 MiB each), so hashing them every poll is cheap.
    """
    digests: Fingerprint = {}
    try:
        paths = sorted(
            path
            for folder in (directory, directory / SUBFLOWS_DIR)
            for pattern in ("*.yaml", "*.yml")
            for path in folder.glob(pattern)
        )
    except OSError as exc:
        return {"": f"unreadable directory: {exc}"}
    for path in paths:
        try:
            digests[str(path.relative_to(directory))] = hashlib.sha256(
                path.read_bytes()
            ).hexdigest()
        except OSError as exc:
            # Deleted or replaced between listing and reading: the next poll sees it settled.
            digests[str(path.relative_to(directory))] = f"unreadable: {exc.__class__.__name__}"
    return digests


class FlowReloader:
    """Reloads a flows directory into a `CatalogOwner`, keeping running versions for calls.

    Call `reload()` for an explicit reload (SIGHUP), `poll()` for a periodic check, or run
    `watch()` as a task to do both. One reload runs at a time.
    """

    def __init__(
        self,
        directory: Path,
        owner: CatalogOwner,
        *,
        keep: int = DEFAULT_KEEP_VERSIONS,
        loaded: Fingerprint | None = None,
    ) -> None:
        """
        Args:
            directory: The flows directory the owner's catalog came from.
            owner: Its `catalog` attribute is replaced on each successful reload.
            keep: Versions kept per flow, the live one included (at least 1).
            loaded: The fingerprint of the files owner's catalog was loaded from, taken
                *before* loading them; None makes the first check load the directory again.
        """
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.directory = directory
        self.owner = owner
        self.keep = keep
        self._loaded = loaded
        # The last fingerprint a poll saw, and the last one rejected: a broken file is
        # reported once, not on every poll, until it changes again (or SIGHUP asks again).
        self._seen = loaded
        self._rejected: Fingerprint | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()

    def request_reload(self) -> None:
        """Asks `watch()` for an explicit reload; safe to call from a signal handler."""
        self._wake.set()

    async def reload(self) -> Outcome:
        """Reloads now if any file differs from what is live, even if it was rejected before."""
        async with self._lock:
            current = await asyncio.to_thread(fingerprint, self.directory)
            self._seen = current
            if current == self._loaded:
                self._rejected = None
                _log.info("flows unchanged; live: %s", _describe_live(self.owner.catalog))
                return Outcome.UNCHANGED
            return await self._load(current)

    async def poll(self) -> Outcome:
        """Reloads if files changed and have stayed unchanged since the previous poll.

        Waiting for one quiet poll avoids loading a file an editor or `git pull` is still
        writing (or a flow updated before the routing table that names it).
        """
        async with self._lock:
            current = await asyncio.to_thread(fingerprint, self.directory)
            previous, self._seen = self._seen, current
            if current == self._loaded:
                # Back to what is live: the same broken files saved again must be reported again.
                self._rejected = None
                return Outcome.UNCHANGED
            if current == self._rejected:
                return Outcome.UNCHANGED
            if current != previous:
                return Outcome.SETTLING
            return await self._load(current)

    async def watch(self, interval: float) -> None:
        """Polls every `interval` seconds (0: never) and reloads on `request_reload`, forever."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=interval or None)
            except TimeoutError:
                await self._attempt(self.poll)
                continue
            self._wake.clear()
            await self._attempt(self.reload)

    async def _attempt(self, check: Callable[[], Awaitable[Outcome]]) -> None:
        # The watch task must outlive any surprise (a file vanishing mid-read, a loader bug):
        # a reload that cannot finish leaves the running flows live, as a rejected one does.
        try:
            await check()
        except Exception:
            _log.exception("flow reload failed; still serving the running flows")

    async def _load(self, current: Fingerprint) -> Outcome:
        before = self.owner.catalog
        try:
            # Off the event loop: parsing a large directory must not stall RPCs.
            after = await asyncio.to_thread(self._succeed, before)
        except FlowError as exc:
            problems = [str(problem) for problem in exc.problems]
        except (OSError, UnicodeError) as exc:
            # A file vanished mid-load, is unreadable, or is not UTF-8: the loader names no line.
            problems = [f"{self.directory}: {exc}"]
        except Exception:
            # Not retried until the files change: one traceback, not one per poll.
            self._rejected = current
            raise
        else:
            # Only this task replaces the catalog and it holds the lock: `before` is still live.
            self.owner.catalog = after
            self._loaded = current
            self._rejected = None
            return self._report(before, after)
        self._rejected = current
        _log.error(
            "flow reload rejected (%d problem%s); still serving %s",
            len(problems),
            "" if len(problems) == 1 else "s",
            _describe_live(before),
        )
        for problem in problems:
            _log.error("flow reload rejected: %s", problem)
        return Outcome.REJECTED

    def _report(self, before: Catalog, after: Catalog) -> Outcome:
        changes = _describe_changes(before, after)
        if not changes:
            _log.info(
                "flow files changed but no flow or route did; live: %s", _describe_live(after)
            )
            return Outcome.UNCHANGED
        _log.info(
            "flows reloaded (%s); live: %s; kept for calls in progress: %s",
            "; ".join(changes),
            _describe_live(after),
            _describe_retired(after) or "none",
        )
        return Outcome.RELOADED

    def _succeed(self, before: Catalog) -> Catalog:
        return before.succeeded_by(load_catalog(self.directory), self.keep)


def _describe_live(catalog: Catalog) -> str:
    return ", ".join(f"{f.id}@{f.version}" for f in catalog.flows.values())


def _describe_retired(catalog: Catalog) -> str:
    return ", ".join(
        f"{flow_id}@{flow.version}" for flow_id, kept in catalog.retired.items() for flow in kept
    )


def _describe_changes(before: Catalog, after: Catalog) -> list[str]:
    changes: list[str] = []
    for flow_id, flow in after.flows.items():
        old = before.flows.get(flow_id)
        if old is None:
            changes.append(f"{flow_id}@{flow.version} added")
        elif old.version != flow.version:
            changes.append(f"{flow_id} {old.version} → {flow.version}")
    changes.extend(
        f"{flow_id}@{flow.version} removed for new calls"
        for flow_id, flow in before.flows.items()
        if flow_id not in after.flows
    )
    evicted = {(i, v) for i, vs in before.kept().items() for v in vs} - {
        (i, v) for i, vs in after.kept().items() for v in vs
    }
    changes.extend(f"{i}@{v} no longer kept" for i, v in sorted(evicted))
    if (before.routes, before.default) != (after.routes, after.default):
        changes.append("routing changed")
    return changes
