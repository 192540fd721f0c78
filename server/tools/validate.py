"""`dialogue validate PATH…`: the loader's checks plus the static checks of `lint`, per file.

Directories are checked like the server reads them (every *.yaml/*.yml but routing, not
recursively), then as a whole: unique flow ids and a routing table naming real flows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from server.engine.catalog import ROUTING_FILES, load_catalog
from server.engine.flowfile import (
    SUBFLOWS_DIR,
    FlowError,
    Problem,
    load_flow_file,
    load_subflows,
)
from server.tools.lint import ERROR, WARNING, Finding, lint_flow


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "validate",
        help="check flow files: the loader's checks plus static checks",
        description=(
            "Check flow files and directories of flows: everything the server checks at start-up, "
            "plus unreachable nodes, dead ends, slots read before they are set, prompts missing "
            "a declared language and settings that have no effect. Prints FILE:LINE: SEVERITY: "
            "WHERE: MESSAGE per problem. Exit status: 0 clean (warnings allowed), 1 errors "
            "(or warnings with --strict), 2 a path does not exist."
        ),
    )
    parser.add_argument(
        "paths", nargs="+", type=Path, metavar="PATH", help="flow file or directory of flows"
    )
    parser.add_argument("--strict", action="store_true", help="fail on warnings too")
    parser.set_defaults(run=run)


def _error(problem: Problem) -> Finding:
    return Finding(problem.file, problem.line, ERROR, problem.where, problem.message)


def check_file(path: Path) -> list[Finding]:
    """Loader problems of one flow file as errors, else the static checks' findings.

    The flow's subflows are loaded from `subflows/` beside it, as the server does.
    """
    if path.parent.name == SUBFLOWS_DIR:
        return check_subflows(path.parent)
    try:
        flow = load_flow_file(path)
        text = path.read_text(encoding="utf-8")
    except FlowError as exc:
        # In file order, like the static checks: easier to work through top to bottom.
        return sorted((_error(p) for p in exc.problems), key=lambda f: (f.file, f.line))
    except (OSError, UnicodeError) as exc:
        return [Finding(str(path), 1, ERROR, "file", f"cannot be read as UTF-8 text: {exc}")]
    return lint_flow(flow, text)


def check_subflows(directory: Path) -> list[Finding]:
    """Problems of a directory of subflows (they are checked again in every flow using them)."""
    try:
        load_subflows(directory)
    except FlowError as exc:
        return sorted((_error(p) for p in exc.problems), key=lambda f: (f.file, f.line))
    return []


def check_directory(directory: Path) -> tuple[int, list[Finding]]:
    """(flow files checked, findings) for a directory, the way the server reads it."""
    files = sorted(
        path
        for path in [*directory.glob("*.yaml"), *directory.glob("*.yml")]
        if path.name not in ROUTING_FILES and path.stem != "routing"
    )
    findings = [finding for path in files for finding in check_file(path)]
    if (directory / SUBFLOWS_DIR).is_dir():
        # Also the subflows no flow uses yet: the server would refuse those too.
        findings += check_subflows(directory / SUBFLOWS_DIR)
    if not any(finding.severity == ERROR for finding in findings):
        # Only now: load_catalog would repeat every per-file problem found above.
        try:
            load_catalog(directory)
        except FlowError as exc:
            findings += [_error(problem) for problem in exc.problems]
    return len(files), findings


def run(args: argparse.Namespace) -> int:
    findings: list[Finding] = []
    checked = 0
    missing = False
    for path in args.paths:
        if path.is_dir() and path.name == SUBFLOWS_DIR:
            findings += check_subflows(path)
        elif path.is_dir():
            count, found = check_directory(path)
            checked += count
            findings += found
        elif path.is_file() and path.name in ROUTING_FILES:
            count, found = check_directory(path.parent)
            checked += count
            findings += found
        elif path.is_file():
            checked += 1
            findings += check_file(path)
        else:
            print(f"{path}: no such file or directory", file=sys.stderr)
            missing = True
    # A file given twice (or inside a directory given too) is reported once.
    findings = list({str(finding): finding for finding in findings}.values())
    for finding in findings:
        print(finding)
    errors = sum(1 for f in findings if f.severity == ERROR)
    warnings = sum(1 for f in findings if f.severity == WARNING)
    flows = f"{checked} flow file{'s' if checked != 1 else ''} checked"
    if errors or warnings:
        print(
            f"{flows}: {errors} error{'s' if errors != 1 else ''}, "
            f"{warnings} warning{'s' if warnings != 1 else ''}"
        )
    else:
        print(f"{flows}: no problems")
    if missing:
        return 2
    return 1 if errors or (args.strict and warnings) else 0
