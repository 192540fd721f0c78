"""The calls the bench makes: scripted dialogues, their requests, and the canned echo answers.

Two scripts, six events each, so that one call is a mix of one new call and five updates:

- `carrier`: the demo line 10086 (flows/carrier-zh.yaml) — menu by key, a phone number, back to
  the menu, data plan, goodbye (the call ends).
- `ring`: a generated flow of any size (bench/flowgen.py) — start, two menu choices, a collected
  digit, one more choice, hang-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from dialogue.v1 import dialogue_pb2 as pb
from server.config import DEMO_FLOWS
from server.engine.catalog import load_catalog
from server.engine.interpreter import decide
from server.engine.state import CallState

Event = Mapping[str, Mapping[str, str]]

CARRIER_SELECTOR: Final = "10086"
CALLER: Final = "+8613800138000"

SCRIPTS: Final[Mapping[str, Sequence[Event]]] = {
    "carrier": (
        {"call_started": {}},
        {"digits_entered": {"digits": "1"}},
        {"digits_entered": {"digits": "13800138000", "terminator": "#"}},
        {"digits_entered": {"digits": "1"}},
        {"digits_entered": {"digits": "2"}},
        {"digits_entered": {"digits": "2"}},
    ),
    "ring": (
        {"call_started": {}},
        {"digits_entered": {"digits": "1"}},
        {"digits_entered": {"digits": "1"}},
        {"digits_entered": {"digits": "2"}},
        {"digits_entered": {"digits": "5", "terminator": "#"}},
        {"call_ended": {"reason": "normal_clearing"}},
    ),
}
# A fixed instant, so that requests (and their sizes) do not depend on the clock.
_EPOCH_S: Final = 1_763_719_200


def decide_request(
    script: str, call_id: str, step: int, selector: str = CARRIER_SELECTOR
) -> pb.DecideNextActionRequest:
    """The request of one step of a scripted call, as a gateway would send it."""
    event = SCRIPTS[script][step]
    request = pb.DecideNextActionRequest(request_id=f"{call_id}-r{step}", **event)  # type: ignore[arg-type]
    request.call.call_id = call_id
    request.call.platform = pb.PLATFORM_OTHER
    request.call.caller = CALLER
    request.call.callee = selector
    request.call.flow_selector = selector
    request.occurred_at.CopyFrom(Timestamp(seconds=_EPOCH_S + step))
    return request


def carrier_walk(call_id: str = "bench-0-0") -> list[tuple[CallState, bytes, bytes]]:
    """The carrier script through the pure engine: (state after, request, response) per step."""
    flow = load_catalog(DEMO_FLOWS).resolve(CARRIER_SELECTOR)
    state: CallState | None = None
    steps = []
    for step in range(len(SCRIPTS["carrier"])):
        request = decide_request("carrier", call_id, step)
        decision = decide(flow, state, request)
        state = decision.state
        steps.append(
            (
                state,
                request.SerializeToString(),
                decision.response.SerializeToString(deterministic=True),
            )
        )
    return steps


def canned_responses() -> list[bytes]:
    """What the server answers to each step of the carrier script: the echo servicer's answers."""
    return [response for _, _, response in carrier_walk()]
