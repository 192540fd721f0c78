"""Flow and subflow files: reading them from disk and building them, all problems at once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from server.engine.flow import Flow
from server.engine.flowfile.checker import Checker
from server.engine.flowfile.names import NAME, SUBFLOWS_DIR
from server.engine.flowfile.reader import FlowReader
from server.engine.flowfile.subflows import Subflow
from server.engine.flowfile.yaml_lines import (
    FlowError,
    LineMap,
    Problem,
    describe,
    parse_yaml,
    read_text,
)


def load_flow_file(path: Path, subflows: Mapping[str, Subflow] | None = None) -> Flow:
    """Loads and validates one flow file.

    Args:
        path: The flow file.
        subflows: The subflows it may use; None loads them from `subflows/` beside the file.

    Raises:
        FlowError: with every problem found, each pointing at a line of the file (and of the
            subflow files, when those are loaded here and are wrong).
    """
    if subflows is None:
        subflows = load_subflows(path.parent / SUBFLOWS_DIR)
    name = str(path)
    return parse_flow(read_text(path), name, subflows)


def parse_flow(
    text: str, file: str = "<flow>", subflows: Mapping[str, Subflow] | None = None
) -> Flow:
    """Parses and validates flow YAML text; `file` names it in error messages.

    Args:
        text: The flow's YAML.
        file: Its name, for error messages.
        subflows: The subflows its `subflow` nodes may use, by id.
    """
    data = parse_yaml(text, file)
    checker = Checker(file)
    flow = FlowReader(checker, data, subflows or {}).read()
    if checker.problems or flow is None:
        raise FlowError(checker.problems)
    return flow


def parse_subflows(texts: Mapping[str, str]) -> dict[str, Subflow]:
    """Parses and validates subflow files (file name → YAML text); subflows may use each other.

    Raises:
        FlowError: with every problem of every file, including subflows that use each other
            in a loop and ids used twice.
    """
    subflows, problems = _build_subflows(texts)
    if problems:
        raise FlowError(problems)
    return subflows


def load_subflows(directory: Path) -> dict[str, Subflow]:
    """Loads every `*.yaml`/`*.yml` subflow in a directory; none when there is no directory.

    Raises:
        FlowError: as `parse_subflows`.
    """
    subflows, problems = _load_subflow_dir(directory)
    if problems:
        raise FlowError(problems)
    return subflows


def _load_subflow_dir(directory: Path) -> tuple[dict[str, Subflow], list[Problem]]:
    if not directory.is_dir():
        return {}, []
    texts: dict[str, str] = {}
    problems: list[Problem] = []
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            texts[str(path)] = read_text(path)
        except FlowError as exc:
            problems.extend(exc.problems)
    subflows, more = _build_subflows(texts)
    return subflows, problems + more


def _build_subflows(texts: Mapping[str, str]) -> tuple[dict[str, Subflow], list[Problem]]:
    """Builds subflows in the order they need each other, reporting loops once."""
    problems: list[Problem] = []
    documents: dict[str, tuple[str, LineMap]] = {}
    for file, text in texts.items():
        try:
            data = parse_yaml(text, file)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        name = data.get("subflow")
        if not isinstance(name, str) or not NAME.match(name):
            problems.append(
                Problem(
                    file,
                    data.key_lines.get("subflow", data.line),
                    "subflow.subflow",
                    f"got {describe(name)}, expected the subflow's id (lowercase letters, digits, '_')",
                )
            )
            continue
        if name in documents:
            problems.append(
                Problem(
                    file,
                    data.key_lines["subflow"],
                    "subflow",
                    f"subflow id '{name}' is also used by {documents[name][0]}",
                )
            )
            continue
        documents[name] = (file, data)
    built: dict[str, Subflow] = {}
    failed: set[str] = set()

    def build(name: str, stack: tuple[str, ...]) -> Subflow | str:
        """The subflow, or why it cannot be had (a loop, or it is invalid)."""
        if name in built:
            return built[name]
        if name in failed:
            return f"subflow '{name}' is invalid (see its problems)"
        if name in stack:
            return f"subflows use each other in a loop ({' → '.join([*stack, name])})"
        if name not in documents:
            known = ", ".join(sorted(documents)) or "none"
            return f"unknown subflow '{name}' (expected one of: {known})"
        file, data = documents[name]
        checker = Checker(file)
        reader = FlowReader(checker, data, {}, lambda used: build(used, (*stack, name)))
        subflow = reader.read_subflow()
        if checker.problems or subflow is None:
            failed.add(name)
            problems.extend(checker.problems)
            return f"subflow '{name}' is invalid (see its problems)"
        built[name] = subflow
        return subflow

    for name in documents:
        build(name, ())
    return built, problems


def load_flows(directory: Path) -> dict[str, Flow]:
    """Loads every `*.yaml`/`*.yml` flow in a directory (not the routing file), by flow id,
    with the subflows in its `subflows/` folder.

    Raises:
        FlowError: with the problems of every invalid file, and duplicate flow ids.
    """
    flows: dict[str, Flow] = {}
    subflows, problems = _load_subflow_dir(directory / SUBFLOWS_DIR)
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        if path.stem == "routing":
            continue
        try:
            flow = load_flow_file(path, subflows)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        if flow.id in flows:
            problems.append(
                Problem(
                    str(path),
                    flow.line,
                    "flow",
                    f"flow id '{flow.id}' is also used by {flows[flow.id].source}",
                )
            )
        flows[flow.id] = flow
    if problems:
        raise FlowError(problems)
    return flows
