"""Tests of the flow catalog: which flow a new call gets, and how routing.yaml is checked."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.engine.catalog import ROUTING_FILE, Catalog, UnknownFlowError, load_catalog
from server.engine.flowfile import FlowError, Problem

_PROJECT_ROOT = Path(__file__).resolve().parents[3]
_DEMO_FLOWS = _PROJECT_ROOT / "flows"


def _flow_text(flow_id: str, version: str = "1") -> str:
    return (
        f"flow: {flow_id}\n"
        f'version: "{version}"\n'
        "start: bye\n"
        "defaults:\n"
        "  on_max_attempts: bye\n"
        "nodes:\n"
        "  bye:\n"
        "    type: hangup\n"
        "    prompt: Goodbye.\n"
    )


def _directory(tmp_path: Path, *flow_ids: str, routing: str | None = None) -> Path:
    for flow_id in flow_ids:
        (tmp_path / f"{flow_id}.yaml").write_text(_flow_text(flow_id), encoding="utf-8")
    if routing is not None:
        (tmp_path / ROUTING_FILE).write_text(routing, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="module")
def demo() -> Catalog:
    return load_catalog(_DEMO_FLOWS)


# -- the demo catalog -----------------------------------------------------------------------


def test_demo_catalog_loads_every_flow(demo: Catalog) -> None:
    assert sorted(demo.flows) == ["carrier-en", "carrier-intl", "carrier-zh", "survey"]
    assert demo.default == "carrier-zh"


@pytest.mark.parametrize(
    ("selector", "flow_id"),
    [
        ("10086", "carrier-zh"),
        ("+8610086", "carrier-zh"),
        ("10087", "carrier-en"),
        ("+18005550100", "carrier-en"),
        ("4001008600", "carrier-intl"),
        ("+864001008600", "carrier-intl"),
        ("survey-2026q4", "survey"),
        # Nothing routed: the default route.
        ("", "carrier-zh"),
        ("+19995550000", "carrier-zh"),
        ("no-such-line", "carrier-zh"),
        # A selector that names a flow id selects that flow.
        ("carrier-en", "carrier-en"),
        ("survey", "survey"),
        ("carrier-zh", "carrier-zh"),
    ],
)
def test_demo_catalog_routes_selectors(demo: Catalog, selector: str, flow_id: str) -> None:
    assert demo.resolve(selector).id == flow_id


def test_pinned_finds_a_flow_only_at_its_loaded_version(demo: Catalog) -> None:
    flow = demo.flows["survey"]
    assert demo.pinned("survey", flow.version) is flow
    assert demo.pinned("survey", flow.version + "-old") is None
    assert demo.pinned("gone", flow.version) is None


# -- resolving selectors --------------------------------------------------------------------


def test_without_a_default_route_an_unrouted_selector_is_unknown(tmp_path: Path) -> None:
    catalog = load_catalog(
        _directory(tmp_path, "sales", "support", routing='routes:\n  "800": sales\n')
    )
    assert catalog.default == ""
    assert catalog.resolve("800").id == "sales"
    assert catalog.resolve("support").id == "support"
    with pytest.raises(UnknownFlowError, match=r"'801'.*no default route"):
        catalog.resolve("801")
    with pytest.raises(UnknownFlowError, match="no default route"):
        catalog.resolve("")


def test_a_route_wins_over_a_flow_of_the_same_name(tmp_path: Path) -> None:
    catalog = load_catalog(
        _directory(tmp_path, "sales", "support", routing="routes:\n  support: sales\n")
    )
    assert catalog.resolve("support").id == "sales"


def test_unquoted_numeric_selectors_are_read_as_text(tmp_path: Path) -> None:
    catalog = load_catalog(_directory(tmp_path, "sales", routing="routes:\n  10086: sales\n"))
    assert catalog.routes == {"10086": "sales"}


def test_a_single_flow_without_routing_file_serves_every_call(tmp_path: Path) -> None:
    catalog = load_catalog(_directory(tmp_path, "only"))
    assert catalog.default == "only"
    assert catalog.routes == {}
    assert catalog.resolve("").id == "only"
    assert catalog.resolve("anything").id == "only"


def test_several_flows_without_routing_file_serve_only_their_own_ids(tmp_path: Path) -> None:
    catalog = load_catalog(_directory(tmp_path, "sales", "support"))
    assert catalog.default == ""
    assert catalog.resolve("sales").id == "sales"
    with pytest.raises(UnknownFlowError):
        catalog.resolve("")
    with pytest.raises(UnknownFlowError):
        catalog.resolve("10086")


def test_an_empty_routing_file_has_no_default(tmp_path: Path) -> None:
    catalog = load_catalog(_directory(tmp_path, "only", routing=""))
    assert (catalog.routes, catalog.default) == ({}, "")
    assert catalog.resolve("only").id == "only"
    with pytest.raises(UnknownFlowError):
        catalog.resolve("")


# -- broken routing files and directories ---------------------------------------------------


def _routing_problems(tmp_path: Path, routing: str) -> list[Problem]:
    directory = _directory(tmp_path, "sales", "support", routing=routing)
    with pytest.raises(FlowError) as raised:
        load_catalog(directory)
    return raised.value.problems


def test_a_route_to_an_unknown_flow_is_an_error(tmp_path: Path) -> None:
    problems = _routing_problems(tmp_path, 'default: sales\nroutes:\n  "800": billing\n')
    assert problems == [
        Problem(
            str(tmp_path / ROUTING_FILE),
            1,
            "routing.routes['800']",
            "unknown flow 'billing' (expected one of: sales, support)",
        )
    ]


def test_a_default_naming_an_unknown_flow_is_an_error(tmp_path: Path) -> None:
    problems = _routing_problems(tmp_path, "default: billing\n")
    assert problems == [
        Problem(
            str(tmp_path / ROUTING_FILE),
            1,
            "routing.default",
            "unknown flow 'billing' (expected one of: sales, support)",
        )
    ]


def test_every_unknown_flow_in_the_routing_file_is_reported(tmp_path: Path) -> None:
    problems = _routing_problems(
        tmp_path, 'default: nope\nroutes:\n  "800": billing\n  "801": sales\n  "802": hr\n'
    )
    assert [p.where for p in problems] == [
        "routing.routes['800']",
        "routing.routes['802']",
        "routing.default",
    ]


@pytest.mark.parametrize(
    ("routing", "where", "fragment"),
    [
        ("default: sales\nroute:\n  '800': sales\n", "routing", "'default' and 'routes' only"),
        ("- sales\n", "routing", "'default' and 'routes' only"),
        ("routes: [sales]\n", "routing.routes", "a mapping of selector: flow id"),
        ("routes: {800: sales\n", "routing", "expected ',' or '}'"),
    ],
    ids=["unknown-field", "not-a-mapping", "routes-not-a-mapping", "yaml-syntax"],
)
def test_a_malformed_routing_file_is_an_error(
    tmp_path: Path, routing: str, where: str, fragment: str
) -> None:
    (problem,) = _routing_problems(tmp_path, routing)
    assert (problem.file, problem.where) == (str(tmp_path / ROUTING_FILE), where)
    assert fragment in problem.message


def test_an_invalid_flow_stops_the_catalog(tmp_path: Path) -> None:
    _directory(tmp_path, "sales", routing="default: sales\n")
    (tmp_path / "broken.yaml").write_text(
        _flow_text("broken").replace("start: bye", "start: nowhere"), encoding="utf-8"
    )
    with pytest.raises(FlowError) as raised:
        load_catalog(tmp_path)
    assert [(p.file, p.line, p.where) for p in raised.value.problems] == [
        (str(tmp_path / "broken.yaml"), 3, "flow.start")
    ]


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FlowError) as raised:
        load_catalog(tmp_path / "nowhere")
    (problem,) = raised.value.problems
    assert (problem.file, problem.where) == (str(tmp_path / "nowhere"), "flows")
    assert "not a directory" in problem.message


def test_a_directory_without_flows_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ROUTING_FILE).write_text("default: sales\n", encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        load_catalog(tmp_path)
    (problem,) = raised.value.problems
    assert (problem.file, problem.where) == (str(tmp_path), "flows")
    assert "expected at least one" in problem.message


# -- versions: a newer catalog succeeding a running one -------------------------------------


def _load(tmp_path: Path, versions: dict[str, str], routing: str = "") -> Catalog:
    """Writes one flow file per id at the given version (replacing what was there) and loads."""
    for stale in tmp_path.glob("*.yaml"):
        stale.unlink()
    for flow_id, version in versions.items():
        (tmp_path / f"{flow_id}.yaml").write_text(_flow_text(flow_id, version), encoding="utf-8")
    (tmp_path / ROUTING_FILE).write_text(routing, encoding="utf-8")
    return load_catalog(tmp_path)


def test_new_calls_get_the_newest_version_and_older_ones_stay_pinnable(tmp_path: Path) -> None:
    first = _load(tmp_path, {"sales": "1"}, "default: sales\n")
    v1 = first.flows["sales"]
    second = first.succeeded_by(_load(tmp_path, {"sales": "2"}, "default: sales\n"))
    assert second.resolve("").version == "2"
    assert second.flows["sales"].version == "2"
    assert second.pinned("sales", "1") is v1
    assert second.pinned("sales", "2") is second.flows["sales"]
    assert second.pinned("sales", "3") is None
    assert second.kept() == {"sales": ("2", "1")}


def test_reloading_the_unchanged_demo_flows_changes_nothing(demo: Catalog) -> None:
    # Guards the "same version, same content" check: every part of a loaded flow must compare
    # by value, or each reload of an untouched directory would be refused as changed.
    again = demo.succeeded_by(load_catalog(_DEMO_FLOWS))
    assert all(again.flows[i] is flow for i, flow in demo.flows.items())
    assert again.retired == {}


def test_an_unchanged_flow_keeps_its_object_and_adds_no_version(tmp_path: Path) -> None:
    first = _load(tmp_path, {"sales": "1", "support": "1"})
    second = first.succeeded_by(_load(tmp_path, {"sales": "2", "support": "1"}))
    assert second.flows["support"] is first.flows["support"]
    assert second.kept() == {"sales": ("2", "1"), "support": ("1",)}


def test_versions_beyond_keep_are_evicted_oldest_first(tmp_path: Path) -> None:
    catalog = _load(tmp_path, {"sales": "1"})
    for version in ("2", "3", "4"):
        catalog = catalog.succeeded_by(_load(tmp_path, {"sales": version}), keep=3)
    assert catalog.kept() == {"sales": ("4", "3", "2")}
    assert catalog.pinned("sales", "1") is None
    assert catalog.pinned("sales", "2") is not None


def test_keep_one_keeps_only_the_live_version(tmp_path: Path) -> None:
    first = _load(tmp_path, {"sales": "1"})
    second = first.succeeded_by(_load(tmp_path, {"sales": "2"}), keep=1)
    assert second.kept() == {"sales": ("2",)}
    assert second.pinned("sales", "1") is None


def test_keep_below_one_is_refused(tmp_path: Path) -> None:
    catalog = _load(tmp_path, {"sales": "1"})
    with pytest.raises(ValueError, match="at least 1"):
        catalog.succeeded_by(catalog, keep=0)


def test_a_removed_flow_serves_no_new_call_but_its_calls_finish(tmp_path: Path) -> None:
    first = _load(tmp_path, {"sales": "1", "support": "1"})
    second = first.succeeded_by(_load(tmp_path, {"sales": "1"}))
    assert list(second.flows) == ["sales"]
    with pytest.raises(UnknownFlowError):
        second.resolve("support")
    assert second.pinned("support", "1") is first.flows["support"]
    # It comes back under the same version: the kept object, not a second copy.
    third = second.succeeded_by(_load(tmp_path, {"sales": "1", "support": "1"}))
    assert third.flows["support"] is first.flows["support"]
    assert third.kept() == {"sales": ("1",), "support": ("1",)}


def test_rolling_back_to_a_kept_version_makes_it_live_again(tmp_path: Path) -> None:
    catalog = _load(tmp_path, {"sales": "1"})
    v1 = catalog.flows["sales"]
    catalog = catalog.succeeded_by(_load(tmp_path, {"sales": "2"}))
    catalog = catalog.succeeded_by(_load(tmp_path, {"sales": "1"}))
    assert catalog.flows["sales"] is v1
    assert catalog.kept() == {"sales": ("1", "2")}


def test_routes_come_from_the_newer_catalog(tmp_path: Path) -> None:
    first = _load(tmp_path, {"sales": "1", "support": "1"}, 'routes:\n  "800": sales\n')
    second = first.succeeded_by(
        _load(
            tmp_path,
            {"sales": "1", "support": "1"},
            'default: support\nroutes:\n  "800": support\n',
        )
    )
    assert (second.resolve("800").id, second.resolve("").id) == ("support", "support")


def test_changed_content_under_the_same_version_is_refused(tmp_path: Path) -> None:
    catalog = _load(tmp_path, {"sales": "1"})
    path = tmp_path / "sales.yaml"
    path.write_text(_flow_text("sales").replace("Goodbye.", "Goodbye for now."), encoding="utf-8")
    with pytest.raises(FlowError) as raised:
        catalog.succeeded_by(load_catalog(tmp_path))
    (problem,) = raised.value.problems
    assert (problem.file, problem.line, problem.where) == (str(path), 2, "flow.version")
    assert "content changed but version '1' did not; bump version" in problem.message


def test_changed_content_under_a_kept_older_version_is_refused(tmp_path: Path) -> None:
    catalog = _load(tmp_path, {"sales": "1"})
    catalog = catalog.succeeded_by(_load(tmp_path, {"sales": "2"}))
    (tmp_path / "sales.yaml").write_text(
        _flow_text("sales", "1").replace("Goodbye.", "Bye."), encoding="utf-8"
    )
    with pytest.raises(FlowError, match="content changed but version '1' did not"):
        catalog.succeeded_by(load_catalog(tmp_path))


def test_comments_layout_and_file_names_are_not_content(tmp_path: Path) -> None:
    catalog = _load(tmp_path, {"sales": "1"})
    (tmp_path / "sales.yaml").unlink()
    (tmp_path / "renamed.yaml").write_text(
        "# moved and commented\n\n" + _flow_text("sales"), encoding="utf-8"
    )
    newer = catalog.succeeded_by(load_catalog(tmp_path))
    assert newer.flows["sales"].source == str(tmp_path / "renamed.yaml")
    assert newer.kept() == {"sales": ("1",)}
