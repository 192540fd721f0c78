"""A retry is a byte-identical request within the window; anything else is a new turn."""

from __future__ import annotations

from gateways.aliyun_ccc.retries import RetryWindow

PARAMS = {"Action": "Dialogue", "CallId": "c-1", "InstanceId": "i", "Utterance": ""}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_resend_within_the_window_is_the_same_occurrence() -> None:
    clock = Clock()
    window = RetryWindow(3.0, clock)
    first = window.occurrence(PARAMS)
    clock.now += 1.0
    assert window.occurrence(dict(PARAMS)) == first


def test_identical_requests_further_apart_are_separate_turns() -> None:
    clock = Clock()
    window = RetryWindow(3.0, clock)
    occurrences = set()
    for _ in range(3):
        occurrences.add(window.occurrence(PARAMS))
        clock.now += 5.0
    assert len(occurrences) == 3


def test_a_different_request_is_a_different_turn() -> None:
    window = RetryWindow(3.0, Clock())
    assert window.occurrence(PARAMS) != window.occurrence({**PARAMS, "Utterance": "是的"})


def test_a_zero_window_never_merges() -> None:
    window = RetryWindow(0.0, Clock())
    assert window.occurrence(PARAMS) != window.occurrence(PARAMS)
