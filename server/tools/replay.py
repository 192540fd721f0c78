"""`dialogue replay`: re-run a recorded call's events against a flow and show where decisions differ.

The turns come from a server's GetCall RPC (`--call ID --server HOST:PORT`) or from an exported
history (`--from-file turns.jsonl`, JSON lines of `{"request": …, "response": …}` in proto JSON,
as `--export` writes them). Each recorded request is fed, in order, to the engine in-process
with the flow as it is now (or a given flow file); every turn whose action, node, intent,
prompts, action settings or end of dialogue differ from the recorded response is shown.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from dialogue.v1 import dialogue_pb2 as pb
from dialogue.v1 import dialogue_pb2_grpc
from server.config import DEFAULT_LISTEN
from server.engine.catalog import UnknownFlowError
from server.engine.flow import Flow
from server.engine.hooks import Outcome
from server.tools.common import (
    Conversation,
    HookHandler,
    ToolError,
    action_message,
    action_name,
    call_hook,
    default_flows_dir,
    display_path,
    event_text,
    fixed_hook,
    load_catalog_or_fail,
    load_flow,
    parse_time,
    prompt_items,
)

DEFAULT_TIMEOUT_S = 10.0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="re-run a recorded call against the current flow and show differing decisions",
        description=(
            "Fetch a call's turns from a server (GetCall) or read them from a JSON-lines file, "
            "re-run its events in-process against the flow as it is now in --flows (or a given "
            "flow file), and show turn by turn where the decisions differ. Exit status: 0 all "
            "the same, 1 some differ, 2 the call or flow could not be read."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--call", metavar="CALL_ID", help="the call to fetch with GetCall")
    source.add_argument(
        "--from-file",
        type=Path,
        metavar="TURNS.jsonl",
        help='an exported history: one {"request": …, "response": …} per line, proto JSON',
    )
    parser.add_argument(
        "--server",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"the dialogue server to fetch --call from (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--flows",
        type=Path,
        default=None,
        help="directory holding the call's flow (default: $DIALOGUE_FLOWS, else the demo flows)",
    )
    parser.add_argument(
        "--flow-version",
        "--flow",
        dest="flow_file",
        default=None,
        metavar="FLOW_FILE",
        help="replay against this flow file (e.g. a new version) instead of the call's flow in --flows",
    )
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="TURNS.jsonl",
        help="also write the turns as JSON lines, for a later --from-file",
    )
    parser.add_argument(
        "--hooks",
        choices=("none", "call", "error", "timeout"),
        default="none",
        help="fulfillment/understanding hooks the replay reaches: 'none' (default) stops the "
        "replay there, since the recorded results are not kept; 'call' calls them for real; "
        "'error'/'timeout' answer each with that outcome",
    )
    parser.add_argument(
        "--now",
        default=None,
        metavar="TIME",
        help="the time to assume for events recorded without occurred_at (the server used "
        "its clock then, which is not recorded), ISO 8601 with offset",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"deadline of the GetCall RPC (default {DEFAULT_TIMEOUT_S:.0f})",
    )
    parser.set_defaults(run=run)


@dataclass(frozen=True, slots=True)
class RecordedTurn:
    """One event of the call and the decision it got then."""

    number: int
    request: pb.DecideNextActionRequest
    response: pb.DecideNextActionResponse


# -- reading the history ----------------------------------------------------------------------


def fetch_call(server: str, call_id: str, timeout: float) -> pb.GetCallResponse:
    """The call's snapshot and turns from a server's GetCall.

    Raises:
        ToolError: the RPC failed (unreachable server, unknown call, deadline exceeded).
    """
    channel = grpc.insecure_channel(server)
    try:
        stub = dialogue_pb2_grpc.DialogueServiceStub(channel)
        reply: pb.GetCallResponse = stub.GetCall(
            pb.GetCallRequest(call_id=call_id), timeout=timeout
        )
    except grpc.RpcError as exc:
        raise ToolError(
            f"GetCall {call_id!r} at {server} failed: {exc.code().name}: {exc.details()}"
        ) from exc
    finally:
        channel.close()
    return reply


def read_turns_file(path: Path) -> list[RecordedTurn]:
    """Turns from JSON lines of {"number"?, "request", "response"} in proto JSON.

    Raises:
        ToolError: the file is missing or a line is not such an object, as FILE:LINE: message.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ToolError(f"cannot read {path}: {exc}") from exc
    turns: list[RecordedTurn] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict) or not {"request", "response"} <= set(data):
                raise ValueError('expected an object with "request" and "response"')
            request = json_format.ParseDict(data["request"], pb.DecideNextActionRequest())
            response = json_format.ParseDict(data["response"], pb.DecideNextActionResponse())
        except (ValueError, json_format.ParseError) as exc:
            raise ToolError(f"{path}:{line_number}: {exc}") from exc
        turns.append(RecordedTurn(int(data.get("number", len(turns) + 1)), request, response))
    if not turns:
        raise ToolError(f"{path}: no turns")
    return turns


def write_turns_file(path: Path, turns: list[RecordedTurn]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for turn in turns:
            record = {
                "number": turn.number,
                "request": json_format.MessageToDict(
                    turn.request, preserving_proto_field_name=True
                ),
                "response": json_format.MessageToDict(
                    turn.response, preserving_proto_field_name=True
                ),
            }
            out.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


# -- comparing --------------------------------------------------------------------------------


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}.{key}" if prefix else key))
        return flat
    return {prefix: value}


def _settings(response: pb.DecideNextActionResponse) -> dict[str, Any]:
    """The action's fields other than the prompt items (listen spec, transfer target, …)."""
    message = action_message(response)
    if message is None:
        return {}
    data = json_format.MessageToDict(message, preserving_proto_field_name=True)
    prompts = data.get("prompts")
    if isinstance(prompts, dict):
        prompts.pop("items", None)
    return _flat(data)


def differences(
    recorded: pb.DecideNextActionResponse, replayed: pb.DecideNextActionResponse
) -> list[str]:
    """What differs between two decisions, one line each (empty when they are the same)."""
    lines: list[str] = []

    def compare(what: str, old: object, new: object) -> None:
        if old != new:
            lines.append(f"{what}: recorded {old or 'none'}, replayed {new or 'none'}")

    compare("action", action_name(recorded), action_name(replayed))
    compare("node", recorded.diagnostics.node_id, replayed.diagnostics.node_id)
    compare("intent", recorded.diagnostics.matched_intent, replayed.diagnostics.matched_intent)
    compare("dialogue_over", recorded.dialogue_over, replayed.dialogue_over)
    old_prompts, new_prompts = prompt_items(recorded), prompt_items(replayed)
    if old_prompts != new_prompts:
        lines.append("prompts: recorded " + (" | ".join(old_prompts) or "none"))
        lines.append("         replayed " + (" | ".join(new_prompts) or "none"))
    # At another node everything differs anyway; settings are news only at the same place.
    same_place = recorded.diagnostics.node_id == replayed.diagnostics.node_id
    if same_place and action_name(recorded) == action_name(replayed):
        old, new = _settings(recorded), _settings(replayed)
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                lines.append(
                    f"{key}: recorded {json.dumps(old.get(key), ensure_ascii=False)}, "
                    f"replayed {json.dumps(new.get(key), ensure_ascii=False)}"
                )
    return lines


def replay(
    flow: Flow,
    turns: list[RecordedTurn],
    out: Any,
    hooks: HookHandler | None = None,
    now: datetime | None = None,
) -> int:
    """Replays the turns against the flow, printing each; returns how many turns differ."""
    conversation = Conversation(flow, hooks=hooks)
    differing = 0
    for turn in turns:
        event = event_text(turn.request)
        try:
            decision = conversation.apply(turn.request, now=now)
        except ToolError as exc:
            print(f"turn {turn.number} {event}: DIFFERS: {exc}", file=out)
            if conversation.hooks is None and "hook" in str(exc):
                print("  (--hooks call, error or timeout lets the replay go on)", file=out)
            return differing + 1
        found = differences(turn.response, decision.response)
        where = (
            f"{action_name(decision.response)} at {decision.response.diagnostics.node_id or '-'}"
        )
        if found:
            differing += 1
            print(f"turn {turn.number} {event}: DIFFERS", file=out)
            for line in found:
                print(f"  {line}", file=out)
        else:
            print(f"turn {turn.number} {event}: same ({where})", file=out)
    return differing


def _flow_for(
    args: argparse.Namespace, turns: list[RecordedTurn], snapshot: pb.CallSnapshot | None
) -> Flow:
    flows_dir = args.flows or default_flows_dir()
    if args.flow_file:
        return load_flow(args.flow_file, flows_dir)
    flow_id = (snapshot.flow_id if snapshot is not None else "") or next(
        (t.response.diagnostics.flow_id for t in turns if t.response.diagnostics.flow_id), ""
    )
    catalog = load_catalog_or_fail(flows_dir)
    if not flow_id:
        # The call never started a flow (it ended first): route it as the server would.
        try:
            return catalog.resolve(turns[0].request.call.flow_selector)
        except UnknownFlowError as exc:
            raise ToolError(str(exc)) from exc
    if flow_id not in catalog.flows:
        raise ToolError(
            f"the call ran flow '{flow_id}', which is not in {flows_dir} "
            f"(flow ids: {', '.join(sorted(catalog.flows))}); give --flows or --flow-version FILE"
        )
    return catalog.flows[flow_id]


def run(args: argparse.Namespace) -> int:
    out = sys.stdout
    snapshot: pb.CallSnapshot | None = None
    if args.call is not None:
        reply = fetch_call(args.server, args.call, args.timeout)
        snapshot = reply.call
        turns = [RecordedTurn(t.number, t.request, t.response) for t in reply.turns]
        if not turns:
            raise ToolError(f"call {args.call!r} has no recorded turns")
        source = f"call {args.call} from {args.server}"
    else:
        turns = read_turns_file(args.from_file)
        source = str(args.from_file)
    if turns[0].number != 1:
        raise ToolError(
            f"{source}: the history starts at turn {turns[0].number} (the server keeps only the "
            "newest turns), so the call cannot be replayed from its start"
        )
    if args.export is not None:
        write_turns_file(args.export, turns)
        print(f"wrote {len(turns)} turns to {args.export}", file=out)
    flow = _flow_for(args, turns, snapshot)
    recorded = turns[0].response.diagnostics
    print(
        f"replaying {source}: {len(turns)} turns, recorded with {recorded.flow_id or '-'} "
        f"{recorded.flow_version or '-'}; now against {flow.id} {flow.version} "
        f"({display_path(flow.source)})",
        file=out,
    )
    hooks = {
        "none": None,
        "call": call_hook,
        "error": fixed_hook(Outcome.ERROR, "not called (dialogue replay --hooks error)"),
        "timeout": fixed_hook(Outcome.TIMEOUT, "not called (dialogue replay --hooks timeout)"),
    }[args.hooks]
    differing = replay(flow, turns, out, hooks, parse_time(args.now) if args.now else None)
    if differing:
        print(f"{differing} of {len(turns)} turns differ", file=out)
        return 1
    print(f"all {len(turns)} turns decided the same", file=out)
    return 0
