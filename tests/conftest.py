"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server_process import MEMORY_SERVER_ARGS, RunningServer, start_server


@pytest.fixture
def running_server() -> Iterator[RunningServer]:
    """A real dialogue-server process with the demo flows and an in-memory store.

    Function-scoped so every test sees a fresh store and a test's shutdown check (SIGTERM must
    exit 0) is attributed to that test.
    """
    with start_server(*MEMORY_SERVER_ARGS) as server:
        yield server
