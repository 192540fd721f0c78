"""The flows a server runs, the routing table that picks one for a new call, and the older
versions that calls in progress still run."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from server.engine.flow import Flow
from server.engine.flowfile import FlowError, Problem, load_flows

ROUTING_FILE = "routing.yaml"
# Either spelling is the routing table; `load_flows` skips both as flows.
ROUTING_FILES = (ROUTING_FILE, "routing.yml")
# Versions kept per flow id, the live one included: enough for calls that started a few
# reloads ago to finish, while a busy author reloading all day cannot grow memory unbounded.
DEFAULT_KEEP_VERSIONS = 5
_VERSION_KEY = re.compile(r"^version\s*:", re.MULTILINE)


class UnknownFlowError(LookupError):
    """No flow serves a flow selector (and there is no default route)."""


@dataclass(frozen=True, slots=True)
class Catalog:
    """Flows by id, routes from flow selectors (dialled number, scenario, ...) to flow ids, and
    the older versions still kept for calls in progress.

    Attributes:
        flows: The live version of every flow, by id: what new calls get.
        routes: Flow selector → flow id.
        default: The flow id for an empty or unrouted selector; "" rejects those.
        retired: Flow id → versions that were live before, most recently live first; never the
            live version itself. Includes flows no longer in the directory. See `succeeded_by`.
    """

    flows: dict[str, Flow]
    routes: dict[str, str]
    default: str = ""
    retired: dict[str, tuple[Flow, ...]] = field(default_factory=dict)

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
        """The flow a call in progress started with, if that version is still kept."""
        live = self.flows.get(flow_id)
        if live is not None and live.version == version:
            return live
        return next((f for f in self.retired.get(flow_id, ()) if f.version == version), None)

    def kept(self) -> dict[str, tuple[str, ...]]:
        """Flow id → every version kept, the live one (if any) first, then most recent first."""
        kept: dict[str, tuple[str, ...]] = {i: (f.version,) for i, f in self.flows.items()}
        for flow_id, older in self.retired.items():
            kept[flow_id] = kept.get(flow_id, ()) + tuple(flow.version for flow in older)
        return kept

    def succeeded_by(self, newer: Catalog, keep: int = DEFAULT_KEEP_VERSIONS) -> Catalog:
        """`newer` (freshly loaded) as the live catalog, keeping this one's versions for calls.

        Each flow id keeps its `keep` most recently live versions, the live one included; a
        flow gone from `newer` keeps its versions too, so calls on it can finish. A version
        evicted here fails its calls with FAILED_PRECONDITION, as after a restart.

        A flow whose version equals a kept one must be that version unchanged (its source file
        and line may differ): calls pinned to a version must never see it change under them.
        An unchanged flow keeps its existing object, so nothing downstream sees a change.

        Raises:
            FlowError: a flow changed without a new version (one problem per such flow).
            ValueError: `keep` is less than 1.
        """
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        live: dict[str, Flow] = {}
        retired: dict[str, tuple[Flow, ...]] = {}
        problems: list[Problem] = []
        for flow_id in dict.fromkeys([*self.flows, *self.retired, *newer.flows]):
            history = [
                *((self.flows[flow_id],) if flow_id in self.flows else ()),
                *self.retired.get(flow_id, ()),
            ]
            flow = newer.flows.get(flow_id)
            if flow is None:
                older = history[:keep]
            else:
                same = next((f for f in history if f.version == flow.version), None)
                if same is not None and not _same_content(same, flow):
                    problems.append(_changed_without_new_version(flow))
                elif same is not None and same.source == flow.source:
                    flow = same
                live[flow_id] = flow
                older = [f for f in history if f.version != flow.version][: keep - 1]
            if older:
                retired[flow_id] = tuple(older)
        if problems:
            raise FlowError(sorted(problems, key=lambda p: (p.file, p.line)))
        # The newer catalog's order (its files' order) is the order operators see in logs.
        flows = {flow_id: live[flow_id] for flow_id in newer.flows}
        return Catalog(flows, newer.routes, newer.default, retired)


def _same_content(a: Flow, b: Flow) -> bool:
    """Whether two flows behave alike: equal but for where they were read from."""
    return replace(a, source="", line=0) == replace(b, source="", line=0)


def _changed_without_new_version(flow: Flow) -> Problem:
    return Problem(
        flow.source,
        _version_line(flow),
        "flow.version",
        f"flow '{flow.id}' content changed but version '{flow.version}' did not; bump version "
        f"(calls in progress keep running version '{flow.version}' as first loaded)",
    )


def _version_line(flow: Flow) -> int:
    """The line of the flow's top-level `version:` key, to point the author right at it."""
    try:
        text = Path(flow.source).read_text(encoding="utf-8")
    except (OSError, UnicodeError):
        return flow.line
    match = _VERSION_KEY.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else flow.line


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
