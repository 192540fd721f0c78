"""Scripted calls on the demo carrier line, and where an uninterrupted run of them ends."""

from __future__ import annotations

from dialogue.v1 import dialogue_pb2 as pb
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.engine.interpreter import decide

# Menu by key, a phone number, back to the menu, data plan, then goodbye: six turns.
SCRIPT: list[dict[str, dict[str, str]]] = [
    {"call_started": {}},
    {"digits_entered": {"digits": "1"}},
    {"digits_entered": {"digits": "13800138000"}},
    {"digits_entered": {"digits": "1"}},
    {"digits_entered": {"digits": "2"}},
    {"digits_entered": {"digits": "2"}},
]


def scripted_request(call: int, step: int) -> pb.DecideNextActionRequest:
    message = pb.DecideNextActionRequest(request_id=f"c{call}-r{step}", **SCRIPT[step])  # type: ignore[arg-type]
    message.call.call_id = f"crash-{call}"
    message.call.flow_selector = "10086"
    return message


def uninterrupted_end() -> tuple[str, bool]:
    """Where the script ends when nothing goes wrong, from the pure engine."""
    catalog = load_catalog(DEMO_FLOWS)
    flow = catalog.resolve("10086")
    state = None
    for step in range(len(SCRIPT)):
        decision = decide(flow, state, scripted_request(0, step))
        state = decision.state
    assert state is not None
    return state.node, state.over
