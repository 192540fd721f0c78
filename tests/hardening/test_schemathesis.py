"""Schemathesis against each gateway's own OpenAPI description (FastAPI's `/openapi.json`).

The vendor routes read the raw request, so the description knows their paths and methods but
no parameters or bodies (docs/operations.md, "Bad input and fault drills", says why that adds
little beside the vendor-aware fuzz): what Schemathesis can still check is that every described
operation, in the positive and the negative generation mode, is answered without a 5xx. Bounded:
a few cases per operation.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import given, note
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.hardening.stack import VENDORS, Stack, running_stack
from tests.hardening.strategies import bounded

CASES_PER_VENDOR = 40


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_stack() as running:
        yield running


def _description(url: str) -> dict[str, Any]:
    with warnings.catch_warnings():
        # FastAPI warns that a route serving GET and POST gives both one operation id; the
        # description is still complete, and the warning is not the gateway's answer.
        warnings.filterwarnings("ignore", "Duplicate Operation ID", UserWarning)
        document: dict[str, Any] = httpx.get(f"{url}/openapi.json", timeout=60).json()
    return document


def _operations(stack: Stack, vendor: str) -> st.SearchStrategy[Any]:
    schema = schemathesis.openapi.from_dict(_description(stack.urls[vendor]))
    strategies = []
    for result in schema.get_all_operations():
        # The description is FastAPI's own: every operation in it is valid.
        operation = result.ok()  # type: ignore[union-attr]
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(generation_mode=mode))
    return st.one_of(strategies)


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_described_operation_answers_without_a_server_error(
    stack: Stack, vendor: str
) -> None:
    operations = _operations(stack, vendor)
    seen: set[tuple[str, str, int]] = set()

    @bounded(CASES_PER_VENDOR)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(operations)
        response = case.call(base_url=stack.urls[vendor], timeout=60)
        seen.add((case.method, case.path, response.status_code))
        note(f"{case.method} {case.formatted_path} -> {response.status_code} {response.text[:300]}")
        assert "Traceback" not in response.text
        case.validate_response(response, checks=[not_a_server_error])

    run()
    # Every route of the vendor was reached (besides /healthz, /readyz and /metrics).
    assert len({path for _, path, _ in seen}) >= 3, seen
