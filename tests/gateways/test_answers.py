"""render_or_fallback: the decision rendered, or the fallback when rendering fails."""

from __future__ import annotations

import logging

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from gateways.answers import render_or_fallback
from gateways.fallback import FallbackPolicy

_POLICY = FallbackPolicy()


def _note(response: pb.DecideNextActionResponse, rescue: bool) -> tuple[str, bool]:
    if response.diagnostics.note == "broken":
        raise KeyError("a rendering bug")
    return response.diagnostics.note, rescue


def test_a_decision_that_renders_is_its_own_answer() -> None:
    response = pb.DecideNextActionResponse()
    response.diagnostics.note = "fine"
    log = logging.getLogger("test")
    assert render_or_fallback(_note, response, _POLICY, "c1", log) == ("fine", False)


def test_a_rendering_bug_answers_the_fallback_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = pb.DecideNextActionResponse()
    response.diagnostics.note = "broken"
    log = logging.getLogger("test")
    with caplog.at_level(logging.ERROR, logger="test"):
        answer = render_or_fallback(_note, response, _POLICY, "c1", log)
    assert answer == ("fallback: render error", True)
    assert "cannot render the decision for call c1" in caplog.text
