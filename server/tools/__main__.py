"""`dialogue`: the flow author's tools. `dialogue --help` lists the subcommands."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Sequence

from server.tools import chat, conversation_tests, export, graph, replay, validate
from server.tools.common import ToolError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dialogue",
        description=(
            "Tools for flow authors: validate flows, chat with one in the terminal, run "
            "conversation tests, draw a flow, replay a recorded call, export call history. "
            "Everything runs the engine in-process; only replay talks to a server."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate.add_parser(commands)
    chat.add_parser(commands)
    conversation_tests.add_parser(commands)
    graph.add_parser(commands)
    replay.add_parser(commands)
    export.add_parser(commands)
    return parser


def _tolerant_output() -> None:
    # Flows speak Chinese: a terminal or pipe without UTF-8 must not crash the tool mid-report.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper) and stream.encoding.lower() not in (
            "utf-8",
            "utf8",
        ):
            stream.reconfigure(errors="backslashreplace")


def main(argv: Sequence[str] | None = None) -> int:
    """Console-script entry point; returns the exit status (argparse exits 2 on bad usage)."""
    _tolerant_output()
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except ToolError as exc:
        print(f"dialogue {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `dialogue test … | head`: the reader left; say nothing more (Python docs' recipe, so
        # that the interpreter's own flush at exit does not complain either).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
