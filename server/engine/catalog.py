"""The flows a server runs and the routing table that picks one for a new call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from server.engine.flow import Flow
from server.engine.loader import FlowError, Problem, load_flows

ROUTING_FILE = "routing.yaml"
# Either spelling is the routing table; `load_flows` skips both as flows.
ROUTING_FILES = (ROUTING_FILE, "routing.yml")


class UnknownFlowError(LookupError):
    """No flow serves a flow selector (and there is no default route)."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """Flows by id, and routes from flow selectors (dialled number, scenario, ...) to flow ids.

    Attributes:
        flows: Every loaded flow, by id.
        routes: Flow selector → flow id.
        default: The flow id for an empty or unrouted selector; "" rejects those.
    """

    flows: dict[str, Flow]
    routes: dict[str, str]
    default: str = ""

    def resolve(self, selector: str) -> Flow:
        """Picks the flow for a new call: its route, a flow of that id, or the default.

        Raises:
            UnknownFlowError: nothing serves the selector and there is no default route.
        """
        flow_id = self.routes.get(selector) or (
            selector if selector in self.flows else self.default
        )
        if not flow_id:
            raise UnknownFlowError(
                f"no flow serves flow selector {selector!r} and there is no default route"
            )
        return self.flows[flow_id]

    def pinned(self, flow_id: str, version: str) -> Flow | None:
        """The flow a call in progress started with, if that version is still loaded."""
        flow = self.flows.get(flow_id)
        return flow if flow is not None and flow.version == version else None


def load_catalog(directory: Path) -> Catalog:
    """Loads every flow in a directory and its `routing.yaml`, checking routes name real flows.

    routing.yaml: `default: FLOW_ID` (optional) and `routes: {SELECTOR: FLOW_ID, ...}`.

    Raises:
        FlowError: any flow or the routing table is invalid, or the directory is missing.
    """
    if not directory.is_dir():
        raise FlowError(
            [
                Problem(
                    str(directory), 0, "flows", "not a directory (expected a folder of flow files)"
                )
            ]
        )
    flows = load_flows(directory)
    if not flows:
        raise FlowError(
            [Problem(str(directory), 0, "flows", "no *.yaml flow files (expected at least one)")]
        )
    path = next((directory / name for name in ROUTING_FILES if (directory / name).exists()), None)
    if path is None:
        # One flow needs no routing table: it serves every call.
        return Catalog(flows, {}, next(iter(flows)) if len(flows) == 1 else "")
    return _parse_routing(path, flows)


def _parse_routing(path: Path, flows: dict[str, Flow]) -> Catalog:
    name = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise FlowError([Problem(name, 1, "routing", str(exc).replace("\n", " "))]) from exc
    if not isinstance(data, dict) or set(data) - {"default", "routes"}:
        raise FlowError(
            [Problem(name, 1, "routing", "expected a mapping with 'default' and 'routes' only")]
        )
    routes_raw = data.get("routes") or {}
    if not isinstance(routes_raw, dict):
        raise FlowError(
            [Problem(name, 1, "routing.routes", "expected a mapping of selector: flow id")]
        )
    routes = {str(selector): str(flow_id) for selector, flow_id in routes_raw.items()}
    default = str(data.get("default") or "")
    known = ", ".join(sorted(flows))
    problems = [
        Problem(
            name,
            1,
            f"routing.routes[{selector!r}]",
            f"unknown flow '{flow_id}' (expected one of: {known})",
        )
        for selector, flow_id in routes.items()
        if flow_id not in flows
    ]
    if default and default not in flows:
        problems.append(
            Problem(
                name, 1, "routing.default", f"unknown flow '{default}' (expected one of: {known})"
            )
        )
    if problems:
        raise FlowError(problems)
    return Catalog(flows, routes, default)
