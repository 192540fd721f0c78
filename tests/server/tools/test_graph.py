"""`dialogue graph`: SVG through Graphviz, DOT and Mermaid text, and the committed drawings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.tools.graph import to_dot, to_mermaid
from tests.server.tools.conftest import Run
from tests.support.server_process import REPO_ROOT

GRAPHS = REPO_ROOT / "docs" / "flows" / "graphs"
_SVG = "{http://www.w3.org/2000/svg}"


def _svg_titles(path: Path) -> set[str]:
    root = ET.parse(path).getroot()
    assert root.tag == f"{_SVG}svg"
    return {title.text or "" for title in root.iter(f"{_SVG}title")}


def test_an_svg_has_every_node_and_edge(run: Run, tmp_path: Path) -> None:
    output = tmp_path / "carrier-zh.svg"
    result = run("graph", "carrier-zh", "-o", str(output))
    assert (result.status, result.lines) == (0, [f"wrote {output}"])
    titles = _svg_titles(output)
    flow = load_catalog(DEMO_FLOWS).flows["carrier-zh"]
    assert set(flow.nodes) <= titles
    for edge in (
        "main_menu->bill_phone",
        "main_menu->agent_after_failures",
        "agent->agent_busy",
        "_commands->agent_queue",
        "agent_queue->agent",
        "_start->welcome",
    ):
        assert edge in titles
    assert "欢迎致电中国移动客服热线" in output.read_text(encoding="utf-8")


def test_dot_source_shapes_nodes_by_kind_and_styles_edges() -> None:
    dot = to_dot(load_catalog(DEMO_FLOWS).flows["survey"])
    assert '"intro" [shape=parallelogram' in dot
    assert '"consent_check" [shape=diamond' in dot
    assert '"complaint" [shape=cylinder' in dot
    assert '"thanks" [shape=doubleoctagon' in dot
    assert '"score_check" -> "complaint" [label="score ∈ 1,2"];' in dot
    assert '"consent_check" -> "bye_later" [label="default"];' in dot
    assert '"intro" -> "bye_unreached" [label="no-input ×2 / no-match ×2", style=dotted' in dot
    commands = to_dot(load_catalog(DEMO_FLOWS).flows["carrier-en"])
    assert (
        '"_commands" -> "agent" [label="agent [0] agent/operator/representative/…", style=dashed'
        in commands
    )
    assert '"main_menu" [shape=hexagon' in commands
    assert '"agent" [shape=cds' in commands


def test_mermaid_text_on_stdout_and_to_a_file(run: Run, tmp_path: Path) -> None:
    printed = run("graph", "carrier-en", "--mermaid")
    assert printed.status == 0
    assert printed.lines[:5] == [
        "---",
        "title: carrier-en 2026.11.1",
        "---",
        "flowchart TD",
        "  _start(( )) --> welcome",
    ]
    assert '  main_menu -->|"bill [1] bill/billing/balance/…"| bill_phone' in printed.lines
    assert '  main_menu -.->|"no-input ×3 / no-match ×3"| agent_after_failures' in printed.lines
    assert '  _commands -.->|"agent [0] agent/operator/representative/…"| agent' in printed.lines
    output = tmp_path / "en.mmd"
    assert run("graph", "carrier-en", "-o", str(output)).status == 0
    assert output.read_text(encoding="utf-8") == printed.out


def test_dot_text_without_output(run: Run, tmp_path: Path) -> None:
    result = run("graph", str(DEMO_FLOWS / "survey.yaml"))
    assert result.status == 0
    assert result.lines[0] == 'digraph "survey" {'
    output = tmp_path / "survey.dot"
    assert run("graph", "survey", "-o", str(output)).status == 0
    assert output.read_text(encoding="utf-8") == result.out


def test_mermaid_quotes_are_escaped_and_keywords_renamed(run: Run, tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(
        'flow: f\nversion: "1"\nstart: ask\ndefaults:\n  on_max_attempts: end\nnodes:\n'
        '  ask:\n    type: menu\n    prompt: Say "yes".\n    choices:\n'
        '      - {intent: "yes", keywords: ["yes"], next: end}\n'
        "  end:\n    type: hangup\n    prompt: Bye.\n",
        encoding="utf-8",
    )
    mermaid = run("graph", str(flow), "--mermaid").out
    assert '  ask{{"ask<br/>menu<br/>Say #quot;yes#quot;."}}' in mermaid
    assert '  ask -->|"yes yes"| _end' in mermaid
    assert '  _end(("end<br/>hangup<br/>Bye."))' in mermaid


def test_without_graphviz_the_error_says_what_to_install(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = run("graph", "survey", "-o", str(tmp_path / "survey.svg"))
    assert result.status == 2
    assert "Graphviz 'dot' is not installed" in result.err


def test_bad_output_names_are_refused(run: Run, tmp_path: Path) -> None:
    assert run("graph", "survey", "--mermaid", "-o", str(tmp_path / "x.svg")).status == 2
    assert run("graph", "survey", "-o", str(tmp_path / "noformat")).status == 2


@pytest.mark.parametrize("name", ["carrier-zh", "carrier-en", "survey"])
def test_the_committed_drawings_match_the_demo_flows(name: str) -> None:
    """docs/flows/graphs holds each demo flow drawn; redraw them when a flow changes:
    `dialogue graph NAME -o docs/flows/graphs/NAME.mmd` and `… -o docs/flows/graphs/NAME.svg`."""
    flow = load_catalog(DEMO_FLOWS).flows[name]
    assert (GRAPHS / f"{name}.mmd").read_text(encoding="utf-8") == to_mermaid(flow)
    assert set(flow.nodes) <= _svg_titles(GRAPHS / f"{name}.svg")
