"""Labelled children looked up once: the same child as `labels()`, counted in the same series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from telemetry.prometheus import LabelledChildren


def test_a_child_is_labels_child_and_is_looked_up_once() -> None:
    registry = CollectorRegistry()
    requests = Counter("requests", "Requests.", ["route", "status"], registry=registry)
    other = Counter("others", "Others.", ["route", "status"], registry=registry)
    child = LabelledChildren()
    first = child(requests, "/a", "200")
    assert child(requests, "/a", "200") is first is requests.labels("/a", "200")
    assert child(requests, "/a", "500") is not first
    assert child(other, "/a", "200") is not first  # same labels, another metric
    first.inc()
    child(requests, "/a", "200").inc()
    assert registry.get_sample_value("requests_total", {"route": "/a", "status": "200"}) == 2
    assert registry.get_sample_value("others_total", {"route": "/a", "status": "200"}) == 0
