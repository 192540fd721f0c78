"""`dialogue chat FLOW`: talk to a flow in the terminal, with the engine in-process.

Each line is one caller event: plain text is speech, `#123#` presses keys, slash commands stand
for everything else (silence, no-match, hang-up, ...). Every decision is shown as the platform
would get it: action, node, prompts, what to listen for, and the engine's note. Lines come from
stdin, so a conversation can be piped in (`printf '1\n' | dialogue chat carrier-zh`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from dialogue.v1 import dialogue_pb2 as pb
from server.engine.hooks import Outcome
from server.tools.common import (
    DEFAULT_CALLEE,
    DEFAULT_CALLER,
    TRANSFER_RESULTS,
    CallInfo,
    Conversation,
    ToolError,
    call_hook,
    default_flows_dir,
    describe,
    describe_state,
    display_path,
    fixed_hook,
    is_flow_file,
    load_flow,
    parse_time,
)

HELP = """\
  any text          the caller says it (speech recognised)
  #123#             the caller presses keys 1 2 3 (## for no keys)
  /silence          the caller says nothing (no input)
  /nomatch          the platform could not recognise the input (no match)
  /played           the platform finished playing the prompts
  /recorded [URI]   the recording finished
  /transfer ok|failed   the transfer finished (or failed: busy, no_answer, rejected, unreachable)
  /bargein MS       the caller spoke MS milliseconds over the prompt
  /event NAME JSON  any event, e.g. /event platform_error {"code": "503"}
  /hangup           the caller hangs up
  /state            show the call state
  /help             this list
  /quit             leave (so does end of input)"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "chat",
        help="talk to a flow in the terminal (in-process, no server)",
        description=(
            "Talk to a flow as a caller, with the engine in-process (no server needed). "
            "Plain text is speech, #123# presses keys; /help lists the other inputs. "
            "Reads standard input, so a conversation can be piped in."
        ),
        epilog=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "flow",
        metavar="FLOW",
        help="a flow id (or routed flow selector) in --flows, or a flow file",
    )
    parser.add_argument(
        "--flows",
        type=Path,
        default=None,
        help="directory of flows (default: $DIALOGUE_FLOWS, else the demo flows)",
    )
    parser.add_argument("--state", action="store_true", help="show the call state after every turn")
    parser.add_argument("--caller", default=DEFAULT_CALLER, help="the calling party")
    parser.add_argument("--callee", default=DEFAULT_CALLEE, help="the called party")
    parser.add_argument(
        "--outbound", action="store_true", help="an outbound call (the platform dialled)"
    )
    parser.add_argument(
        "--now",
        default=None,
        metavar="TIME",
        help="the call's time for business hours and dates, ISO 8601 with offset "
        "(e.g. 2026-11-23T20:00:00+08:00; default: the clock at each event)",
    )
    parser.add_argument(
        "--hooks",
        choices=("call", "error", "timeout"),
        default="call",
        help="fulfillment/understanding hooks: call them as the server does (default), or "
        "answer every one with an error or a timeout without calling",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="call-associated parameter sent with every event ({params.NAME}); repeatable",
    )
    parser.set_defaults(run=run)


@dataclass(frozen=True, slots=True)
class Event:
    """One caller event to send."""

    name: str
    payload: dict[str, Any]


# Chat's short forms beside the conversation tests' words (`TRANSFER_RESULTS`).
_TRANSFER_RESULTS = {
    **TRANSFER_RESULTS,
    "ok": TRANSFER_RESULTS["succeeded"],
    "fail": TRANSFER_RESULTS["failed"],
}


def parse_input(line: str) -> Event | str:
    """The event a line stands for, or a chat command word ("quit", "state", "help").

    Raises:
        ToolError: a slash command that does not exist or lacks its argument.
    """
    text = line.strip()
    if len(text) >= 2 and text.startswith("#") and text.endswith("#"):
        return Event("digits_entered", {"digits": text[1:-1]})
    if not text.startswith("/"):
        return Event("speech_recognized", {"text": text})
    word, _, rest = text[1:].partition(" ")
    rest = rest.strip()
    simple = {
        "silence": Event("no_input", {}),
        "nomatch": Event("no_match", {}),
        "played": Event("playback_finished", {}),
        "hangup": Event("call_ended", {"hung_up_by": "HANG_UP_PARTY_CALLER"}),
    }
    if word in simple:
        return simple[word]
    if word in ("quit", "exit", "state", "help"):
        return "quit" if word == "exit" else word
    if word == "recorded":
        return Event(
            "recording_finished", {"recording_uri": rest or "file:///tmp/dialogue-chat.wav"}
        )
    if word == "transfer" and rest in _TRANSFER_RESULTS:
        return Event("transfer_finished", dict(_TRANSFER_RESULTS[rest]))
    if word == "bargein" and rest.isdigit():
        return Event("barged_in", {"speech_duration_ms": int(rest)})
    if word == "event" and rest:
        name, _, body = rest.partition(" ")
        try:
            payload = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as exc:
            raise ToolError(f"/event {name}: the payload is not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise ToolError(f"/event {name}: the payload must be a JSON object")
        return Event(name, payload)
    if word in ("transfer", "bargein", "event"):
        usage = {
            "transfer": "/transfer ok|failed|busy|no_answer|rejected|unreachable",
            "bargein": "/bargein MS",
            "event": "/event NAME JSON",
        }
        raise ToolError(f"usage: {usage[word]}")
    raise ToolError(f"unknown command /{word} (/help lists the inputs)")


def _parameters(pairs: list[str]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ToolError(f"--param {pair!r}: expected NAME=VALUE")
        parameters[name] = value
    return parameters


def _show(out: TextIO, response: pb.DecideNextActionResponse) -> None:
    lines = describe(response)
    print(f"bot {lines[0]}", file=out)
    for line in lines[1:]:
        print(f"  {line}", file=out)


def run(args: argparse.Namespace) -> int:
    flow = load_flow(args.flow, args.flows or default_flows_dir())
    parameters = _parameters(args.param)
    call = CallInfo(
        call_id="chat",
        caller=args.caller,
        callee=args.callee,
        selector=flow.id if is_flow_file(args.flow) else args.flow,
        direction=pb.CALL_DIRECTION_OUTBOUND if args.outbound else pb.CALL_DIRECTION_INBOUND,
    )
    fixed = parse_time(args.now) if args.now else None
    hooks = {
        "call": call_hook,
        "error": fixed_hook(Outcome.ERROR, "not called (dialogue chat --hooks error)"),
        "timeout": fixed_hook(Outcome.TIMEOUT, "not called (dialogue chat --hooks timeout)"),
    }[args.hooks]
    conversation = Conversation(flow, call, hooks=hooks, now=lambda: fixed or datetime.now(UTC))
    return chat(conversation, sys.stdin, sys.stdout, parameters, show_state=args.state)


def chat(
    conversation: Conversation,
    lines: TextIO,
    out: TextIO,
    parameters: dict[str, str],
    *,
    show_state: bool = False,
) -> int:
    """Runs the conversation: starts the call, then one event per input line until the end."""
    flow = conversation.flow
    interactive = lines.isatty()
    print(
        f"chatting with {flow.id} {flow.version} ({display_path(flow.source)}); "
        "type what the caller says, #123# to press keys, /help for more",
        file=out,
    )

    def send(event: Event) -> bool:
        """Sends one event and shows the decision; True once the dialogue is over."""
        try:
            decision = conversation.send(event.name, event.payload, parameters)
        except ToolError as exc:
            print(f"error: {exc}", file=out)
            return False
        for hook, result in conversation.hook_log:
            detail = f": {result.detail}" if result.detail else ""
            print(
                f"hook {hook.kind} of {hook.node}: POST {hook.url} → {result.outcome.value}{detail}",
                file=out,
            )
        _show(out, decision.response)
        if show_state:
            print(f"  {describe_state(decision.state)}", file=out)
        return decision.response.dialogue_over

    if send(Event("call_started", {})):
        print("-- the dialogue is over --", file=out)
        return 0
    while True:
        if interactive:
            print("you> ", end="", file=out, flush=True)
        line = lines.readline()
        if not line:
            break
        if not line.strip():
            continue
        if not interactive:
            # Piped input is not echoed by a terminal: show it so the transcript reads well.
            print(f"you> {line.strip()}", file=out)
        try:
            parsed = parse_input(line)
        except ToolError as exc:
            print(f"error: {exc}", file=out)
            continue
        if parsed == "quit":
            break
        if parsed == "help":
            print(HELP, file=out)
        elif parsed == "state":
            print(describe_state(conversation.state), file=out)
        elif isinstance(parsed, Event) and send(parsed):
            print("-- the dialogue is over --", file=out)
            break
    out.flush()
    return 0
