"""The flow model: immutable dataclasses a validated flow file is loaded into.

A flow is a graph of nodes. Nodes that only speak, decide or compute (say, branch, set, hours,
fulfillment) run straight through; nodes that need the platform (menu, collect, transfer,
record, wait, AI gather, hang up) end the turn with one action. Prompts spoken on the way are
carried into that action, because every platform executes exactly one instruction per callback.

Subflows do not exist at run time: the loader inlines each use of one (see `loader`), so a
call's state stays one node id and a flow version pins its subflows too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

from server.engine.hours import Schedule


class BargeIn(Enum):
    """Which caller input may interrupt a prompt."""

    NONE = "none"
    SPEECH = "speech"
    KEYS = "keys"
    ANY = "any"


class SlotType(Enum):
    """What a collect node accepts and how it normalises the value."""

    DIGITS = "digits"
    NUMBER = "number"
    INTEGER = "integer"
    AMOUNT = "amount"
    MOBILE_CN = "mobile_cn"
    E164 = "e164"
    DATE = "date"
    TIME = "time"
    YES_NO = "yes_no"
    CHOICE = "choice"
    REGEX = "regex"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class PromptItem:
    """One thing to play: TTS text (a template) or recorded audio (media name or URL)."""

    text: str = ""
    media_name: str = ""
    url: str = ""
    voice: str = ""
    language: str = ""
    speed: float = 0.0


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """An ordered list of prompt items and who may interrupt them (None: the flow default)."""

    items: tuple[PromptItem, ...] = ()
    barge_in: BargeIn | None = None
    min_speech_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Escalation:
    """No-input / no-match handling of a listening node (None: the flow defaults apply)."""

    no_input: tuple[PromptSpec, ...] | None = None
    no_match: tuple[PromptSpec, ...] | None = None
    max_no_input: int | None = None
    max_no_match: int | None = None
    on_max: str | None = None


@dataclass(frozen=True, slots=True)
class Say:
    """Speaks its prompt, then goes on; waits for playback to finish if asked to."""

    id: str
    prompt: PromptSpec
    next: str
    wait_for_playback: bool = False


@dataclass(frozen=True, slots=True)
class Choice:
    """One menu option, chosen by key or by spoken keyword."""

    intent: str
    next: str
    key: str = ""
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Menu:
    """Plays a prompt and waits for the caller to pick one of its choices.

    `nlu` False keeps the flow's external understanding hook out of this node;
    `fuzzy_threshold` None uses the flow default (0 turns fuzzy matching off here).
    """

    id: str
    prompt: PromptSpec
    choices: tuple[Choice, ...]
    escalation: Escalation = field(default_factory=Escalation)
    speech: bool = True
    nlu: bool = True
    fuzzy_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Option:
    """One value a `choice` slot accepts, said by any of its keywords or picked by its key."""

    value: str
    keywords: tuple[str, ...] = ()
    key: str = ""
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Collect:
    """Plays a prompt and collects one value into a slot, validating it."""

    id: str
    prompt: PromptSpec
    slot: str
    slot_type: SlotType
    next: str
    min_length: int = 1
    max_length: int = 32
    pattern: str = ""
    invalid: tuple[PromptSpec, ...] = ()
    terminator: str = "#"
    keys: bool = True
    speech: bool = True
    escalation: Escalation = field(default_factory=Escalation)
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    options: tuple[Option, ...] = ()
    country_code: str = ""
    confirm: PromptSpec | None = None
    nlu: bool = True
    fuzzy_threshold: float | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """A test on one slot, parameter or call value (see `conditions.OPS`).

    Values may be templates ("{other_slot}"), rendered when the test runs.
    """

    slot: str
    op: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Case:
    """One branch: where to go when every condition holds."""

    conditions: tuple[Condition, ...]
    next: str


@dataclass(frozen=True, slots=True)
class Branch:
    """Goes to the first case whose conditions hold, else to the default."""

    id: str
    cases: tuple[Case, ...]
    default: str


@dataclass(frozen=True, slots=True)
class TransferTarget:
    """Where a transfer goes: exactly one kind, with its value."""

    kind: str  # phone_number | skill_queue | skill_queue_name | agent_id | ivr_flow | sip_uri
    value: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Plays a prompt, then transfers; on failure goes to on_failure."""

    id: str
    prompt: PromptSpec
    target: TransferTarget
    on_failure: str
    parallel: bool = False
    monitored: bool = False
    caller_id: str = ""
    timeout_ms: int = 0


@dataclass(frozen=True, slots=True)
class HangUp:
    """Plays a prompt, then hangs up; the dialogue is over."""

    id: str
    prompt: PromptSpec
    failed: bool = False


@dataclass(frozen=True, slots=True)
class RecordNode:
    """Plays a prompt, records the caller, keeps the recording's location in a slot."""

    id: str
    prompt: PromptSpec
    slot: str
    next: str
    max_duration_ms: int = 60_000
    end_silence_ms: int = 3_000
    beep: bool = True
    stop_key: str = "#"


@dataclass(frozen=True, slots=True)
class WaitNode:
    """Waits a while (e.g. while a back-end works), then goes on."""

    id: str
    duration_ms: int
    next: str


@dataclass(frozen=True, slots=True)
class AiGatherNode:
    """Hands the caller to the platform's voice assistant to fill a parameter schema."""

    id: str
    greeting: str
    schema: dict[str, Any]
    next: str
    on_failure: str
    voice: str = ""
    user_response_timeout_ms: int = 0


@dataclass(frozen=True, slots=True)
class SetNode:
    """Sets slots or call parameters (`params.NAME`) to rendered templates, clears others."""

    id: str
    values: tuple[tuple[str, str], ...]
    clear: tuple[str, ...]
    next: str


@dataclass(frozen=True, slots=True)
class Fulfillment:
    """Calls an external HTTP service with the call's data; branches on how that went.

    The pure engine only describes the call (a pending hook); the service performs it.
    """

    id: str
    url: str
    on_success: str
    on_error: str
    on_timeout: str
    timeout_ms: int = 300
    args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class HoursNode:
    """Goes to `open`, `closed` or `holiday` by the call's time against a schedule."""

    id: str
    schedule: Schedule
    open: str
    closed: str
    holiday: str
    timezone: str = ""


Node = (
    Say
    | Menu
    | Collect
    | Branch
    | Transfer
    | HangUp
    | RecordNode
    | WaitNode
    | AiGatherNode
    | SetNode
    | Fulfillment
    | HoursNode
)
ListeningNode = Menu | Collect


@dataclass(frozen=True, slots=True)
class Command:
    """A global command, recognised in any listening node: go somewhere, or repeat."""

    intent: str
    keywords: tuple[str, ...]
    goto: str = ""
    repeat: bool = False
    key: str = ""
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Defaults:
    """Flow-wide settings every node falls back on."""

    on_max_attempts: str
    barge_in: BargeIn = BargeIn.ANY
    min_speech_ms: int = 0
    no_input_timeout_ms: int = 5_000
    inter_digit_timeout_ms: int = 3_000
    max_no_input: int = 3
    max_no_match: int = 3
    max_failures: int = 0
    on_failure_budget: str = ""
    no_input: tuple[PromptSpec, ...] = ()
    no_match: tuple[PromptSpec, ...] = ()
    fuzzy_threshold: float = 87


@dataclass(frozen=True, slots=True)
class NluConfig:
    """The flow's external understanding service (HTTP), asked before the built-in matchers."""

    url: str
    timeout_ms: int = 300
    min_confidence: float = 0.5


@dataclass(frozen=True, slots=True)
class Flow:
    """A validated flow: its identity, defaults, global commands and nodes.

    Attributes:
        timezone: IANA time zone for relative dates, clock times and business hours.
        synonyms: Folded word → its whole synonym group; a keyword matches its group too.
        nlu: The external understanding hook, if any.
    """

    id: str
    version: str
    language: str
    voice: str
    start: str
    defaults: Defaults
    commands: tuple[Command, ...]
    nodes: dict[str, Node]
    source: str = ""
    line: int = 1
    timezone: str = "UTC"
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nlu: NluConfig | None = None
