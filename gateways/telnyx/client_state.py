"""`client_state`: what the gateway remembers about a call leg, carried by Telnyx.

Telnyx echoes the `client_state` of the last command that set one on every later webhook of
the leg, so it says what the call is doing (a gather runs, prompts play before a hang-up, …)
and what comes next, and the gateway itself keeps no per-call state. It is encoded small
(short keys, empty fields left out), checked again on the way back (it may be forged), and
never written longer than it may be read (`MAX_STATE_CHARS`).

`command_id` is derived from the webhook's `data.id`, so a redelivered webhook yields the same
ids and Telnyx ignores the repeats.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from gateways.telnyx.values import unreadable

# What client_state says the call leg is doing (the "k" of the state).
KIND_INBOUND: Final = "in"  # set by our `answer`: the call came in
KIND_OUTBOUND: Final = "out"  # set by the dialer that placed an outbound call (documented)
KIND_LISTEN: Final = "listen"  # a gather runs; its call.gather.ended reports the keys
KIND_WAIT: Final = "wait"  # a silent gather used as a timer (Wait)
KIND_PLAY: Final = "play"  # prompts play and their end is reported (Play)
KIND_THEN: Final = "then"  # prompts play; when they end, the command in the state follows
KIND_RECORD: Final = "rec"  # a recording runs
KIND_TRANSFER: Final = "xfer"  # a transfer was started
KIND_AI: Final = "ai"  # gather_using_ai runs; its call.ai_gather.ended reports
KIND_LEG: Final = "leg"  # the new leg of a transfer (set through target_leg_client_state)
KIND_ASSISTANT: Final = "bot"  # an AI assistant has the call; call.conversation.ended returns it
KIND_QUEUE: Final = "queue"  # a short timer standing in for a queue query Telnyx cannot answer
KINDS: Final = frozenset(
    {
        KIND_INBOUND,
        KIND_OUTBOUND,
        KIND_LISTEN,
        KIND_WAIT,
        KIND_PLAY,
        KIND_THEN,
        KIND_RECORD,
        KIND_TRANSFER,
        KIND_AI,
        KIND_LEG,
        KIND_ASSISTANT,
        KIND_QUEUE,
    }
)
# Events that mean "a gather or assistant is in charge": prompt ends and keys are its business.
GATHERING: Final = frozenset({KIND_LISTEN, KIND_WAIT, KIND_AI, KIND_ASSISTANT, KIND_QUEUE})

MAX_GATHER_KEYS: Final = 128
"""Telnyx's most digits per gather (the spec's maximum_digits)."""
MAX_STATE_CHARS: Final = 4096
"""The longest client_state read back, and so the longest written (`fits`)."""
# command_ids are UUIDs like Telnyx's own examples, derived (v5) from event id, index and name.
_COMMAND_NAMESPACE = uuid.UUID("1f6d3c8a-7b2e-4d59-a0c4-8e5b2f9d6a31")


@dataclass(frozen=True, slots=True)
class ClientState:
    """What the gateway remembers about a call leg, carried by Telnyx in `client_state`.

    Encoded as base64 of compact JSON with short keys (see `encode_state`), because Telnyx
    echoes it on every later webhook of the leg and some webhooks are frequent.

    Attributes:
        kind: What the leg is doing: one of the KIND_* values.
        ref: The `data.id` of the webhook whose decision set this state; seeds the command_id
            of the follow-up command, so every end-of-prompt webhook yields the same one.
        outbound: The call was placed by the platform (so hang-up sources read the other way).
        next_command: With KIND_THEN: the command to send when the prompt ends.
        next_body: With KIND_THEN: that command's body (no command_id or client_state).
        a_leg: With KIND_LEG: the call_control_id of the call being transferred.
        terminator: With KIND_LISTEN: the key that ends collection, kept out of the digits.
        stop_key: With KIND_RECORD: the key that stops the recording.
        call_control_id: With KIND_RECORD: the leg recorded (call.recording.saved lacks it).
        selector: With KIND_OUTBOUND: the flow selector the dialer chose.
        transcribing: transcription_start was sent on this leg (Telnyx refuses a second one
            with 90054, so it is started once and this flag travels in every later state).
        transcription_language: The bare language that transcription was started in ("" if
            unknown or not chosen); a call that switches language restarts it in the new one.
        maximum: With KIND_LISTEN and a terminator: the most keys the menu takes (the gather
            asks Telnyx for one more, so the terminator is always collected, never leaked).
    """

    kind: str
    ref: str = ""
    outbound: bool = False
    next_command: str = ""
    next_body: Mapping[str, Any] = field(default_factory=dict)
    a_leg: str = ""
    terminator: str = ""
    stop_key: str = ""
    call_control_id: str = ""
    selector: str = ""
    transcribing: bool = False
    maximum: int = 0
    transcription_language: str = ""


def encode_state(state: ClientState) -> str:
    """The state as Telnyx carries it: base64 of compact JSON, empty fields left out."""
    data: dict[str, Any] = {"v": 1, "k": state.kind}
    for key, value in (
        ("r", state.ref),
        ("o", 1 if state.outbound else 0),
        ("n", state.next_command),
        ("b", dict(state.next_body)),
        ("a", state.a_leg),
        ("t", state.terminator),
        ("sk", state.stop_key),
        ("c", state.call_control_id),
        ("s", state.selector),
        ("tr", 1 if state.transcribing else 0),
        ("x", state.maximum),
        ("tl", state.transcription_language),
    ):
        if value:
            data[key] = value
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def decode_state(text: Any) -> ClientState | None:
    """The state from `client_state`; None when absent, too long, or not one of ours.

    A state set by another application on the same leg is not an error: it is ignored, and the
    webhook is read as if no state had come with it.
    """
    if not isinstance(text, str) or not text or len(text) > MAX_STATE_CHARS:
        return None
    try:
        data = json.loads(base64.b64decode(text, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None
    # Checked before anything else reads it: echoed by Telnyx, the state may have been forged.
    if not isinstance(data, dict) or unreadable(data) or data.get("v") != 1:
        return None
    kind = data.get("k")
    if not isinstance(kind, str) or kind not in KINDS:
        return None

    def text_of(key: str) -> str:
        value = data.get(key, "")
        return value if isinstance(value, str) else ""

    body = data.get("b", {})
    return ClientState(
        kind=kind,
        ref=text_of("r"),
        outbound=data.get("o") == 1,
        next_command=text_of("n"),
        next_body=body if isinstance(body, dict) else {},
        a_leg=text_of("a"),
        terminator=text_of("t"),
        stop_key=text_of("sk"),
        call_control_id=text_of("c"),
        selector=text_of("s"),
        transcribing=data.get("tr") == 1,
        transcription_language=text_of("tl"),
        maximum=_count(data.get("x")),
    )


def _count(value: Any) -> int:
    """A positive key count from the state, else 0 (JSON true is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value if 0 < value <= MAX_GATHER_KEYS else 0


def fits(encoded: str) -> bool:
    """Whether an encoded state will be read back (decode_state refuses longer ones)."""
    return len(encoded) <= MAX_STATE_CHARS


def command_id(event_id: str, index: int, name: str) -> str:
    """The command_id of the index-th command (named `name`) answering the event `event_id`.

    The same event always yields the same ids, so a redelivered webhook, a retried command or a
    second end-of-prompt webhook never executes twice: Telnyx ignores a repeated command_id on
    the same call.
    """
    return str(uuid.uuid5(_COMMAND_NAMESPACE, f"{event_id}/{index}/{name}"))


def is_outbound(state: ClientState | None) -> bool:
    """True when the state says the platform placed the call."""
    return state is not None and (state.outbound or state.kind == KIND_OUTBOUND)
