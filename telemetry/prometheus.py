"""Labelled Prometheus children, looked up once: for the server's and the gateways' metrics."""

from __future__ import annotations

from typing import Any


class LabelledChildren:
    """`metric.labels(*values)`, memoised per metric and label values.

    `labels()` takes the metric's lock and validates its values on every call, which costs
    more than the rest of a turn's bookkeeping (bench/levers.md). Memoising is safe because the
    label sets used with it are bounded (methods, routes, outcomes, status codes, flow nodes),
    and children are never removed from the metrics that hold them.
    """

    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def __call__(self, metric: Any, *values: str) -> Any:
        # Keyed by id: the metrics live as long as the object holding both them and this.
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found
