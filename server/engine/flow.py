"""The flow model: immutable dataclasses a validated flow file is loaded into.

A flow is a graph of nodes. Nodes that only speak, decide or compute (say, branch, set, hours,
fulfillment) run straight through; nodes that need the platform (menu, collect, transfer,
record, wait, AI gather, hang up) end the turn with one action. Prompts spoken on the way are
carried into that action, because every platform executes exactly one instruction per callback.

Subflows do not exist at run time: the loader inlines each use of one (see `loader`), so a
call's state stays one node id and a flow version pins its subflows too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Self

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
    """One thing to play: TTS text (a template) or recorded audio (media name or URL).

    `heard_in` is the language key the item was written under (`{zh-CN: …, en-US: …}`): the
    call language that hears it, even when it is spoken in another (the English "For English,
    press 9" of a Chinese menu). "" for an item of the plain forms: heard in its own language.
    """

    text: str = ""
    media_name: str = ""
    url: str = ""
    voice: str = ""
    language: str = ""
    speed: float = 0.0
    heard_in: str = ""


@dataclass(frozen=True, slots=True)
class PromptSpec:
    """An ordered list of prompt items and who may interrupt them (None: the flow default)."""

    items: tuple[PromptItem, ...] = ()
    barge_in: BargeIn | None = None
    min_speech_ms: int | None = None


Rename = Callable[[str], str]
# Keywords said in one language each: ((language, keywords), ...), in the file's order. Empty
# when the keywords are a plain list, which counts in every language.
KeywordsByLanguage = tuple[tuple[str, tuple[str, ...]], ...]
# A text given per language: ((language, text), ...); empty when it is one text for all.
TextByLanguage = tuple[tuple[str, str], ...]


class NodeKind:
    """What every node kind tells the loader, the interpreter and the tools about itself.

    A node kind is a frozen dataclass deriving from this; the class attributes and methods are
    the one place its graph shape is known, so the tools never test for node classes.

    Attributes:
        kind: Its `type:` in YAML.
        listens: The call waits here for the caller's keys or speech (menu, collect).
        may_end: The dialogue can end here (hang-up, a successful transfer).
    """

    __slots__ = ()
    id: str  # every node's first field
    kind: ClassVar[str]
    listens: ClassVar[bool] = False
    may_end: ClassVar[bool] = False

    def targets(self) -> tuple[str, ...]:
        """Every node this one may go to (global commands and flow defaults aside)."""
        return ()

    def through(self) -> tuple[str, ...]:
        """The nodes reached in the same turn, without the platform (straight-through nodes)."""
        return ()

    def hears_commands(self) -> bool:
        """Whether global commands are recognised while the call waits here."""
        return self.listens

    def retarget(self, rename: Rename) -> Self:
        """A copy with its id and every node id it names passed through `rename` (inlining)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Escalation:
    """No-input / no-match handling of a listening node (None: the flow defaults apply).

    Attributes:
        on_max: Where the node goes when either limit is reached.
        on_max_no_input: Where it goes when the no-input limit is reached (before `on_max`).
        on_max_no_match: Where it goes when the no-match limit is reached (before `on_max`).
    """

    no_input: tuple[PromptSpec, ...] | None = None
    no_match: tuple[PromptSpec, ...] | None = None
    max_no_input: int | None = None
    max_no_match: int | None = None
    on_max: str | None = None
    on_max_no_input: str | None = None
    on_max_no_match: str | None = None

    def leave_to(self, kind: str, defaults: Defaults) -> str:
        """Where the node goes when the limit of `kind` ("no_input" or "no_match") is reached:
        the node's target for that kind, else its `on_max`, else the flow's target for that
        kind, else `defaults.on_max_attempts` (docs/flows.md, section 7)."""
        if kind == "no_input":
            own, flow_wide = self.on_max_no_input, defaults.on_max_no_input
        else:
            own, flow_wide = self.on_max_no_match, defaults.on_max_no_match
        return own or self.on_max or flow_wide or defaults.on_max_attempts

    def targets(self) -> tuple[str, ...]:
        """The node's own limit targets (the flow defaults aside)."""
        named = (self.on_max_no_input, self.on_max, self.on_max_no_match)
        return tuple(target for target in named if target)

    def retarget(self, rename: Rename) -> Escalation:
        """A copy whose limit targets are renamed."""

        def renamed(target: str | None) -> str | None:
            return rename(target) if target else target

        return replace(
            self,
            on_max=renamed(self.on_max),
            on_max_no_input=renamed(self.on_max_no_input),
            on_max_no_match=renamed(self.on_max_no_match),
        )


@dataclass(frozen=True, slots=True)
class Say(NodeKind):
    """Speaks its prompt, then goes on; waits for playback to finish if asked to."""

    id: str
    prompt: PromptSpec
    next: str
    wait_for_playback: bool = False

    kind: ClassVar[str] = "say"

    def targets(self) -> tuple[str, ...]:
        return (self.next,)

    def through(self) -> tuple[str, ...]:
        return () if self.wait_for_playback else (self.next,)

    def hears_commands(self) -> bool:
        return self.wait_for_playback

    def retarget(self, rename: Rename) -> Say:
        return replace(self, id=rename(self.id), next=rename(self.next))


@dataclass(frozen=True, slots=True)
class Choice:
    """One menu option, chosen by key or by spoken keyword."""

    intent: str
    next: str
    key: str = ""
    keywords: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    # The keywords of each language, when given per language (`keywords` then holds them all).
    keywords_by_language: KeywordsByLanguage = ()
    # Choosing this switches the call to this language ("For English press 9"); "" keeps it.
    language: str = ""


@dataclass(frozen=True, slots=True)
class Menu(NodeKind):
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

    kind: ClassVar[str] = "menu"
    listens: ClassVar[bool] = True

    def targets(self) -> tuple[str, ...]:
        return tuple(c.next for c in self.choices) + _on_max(self.escalation)

    def retarget(self, rename: Rename) -> Menu:
        choices = tuple(replace(c, next=rename(c.next)) for c in self.choices)
        return replace(
            self, id=rename(self.id), choices=choices, escalation=self.escalation.retarget(rename)
        )


@dataclass(frozen=True, slots=True)
class Option:
    """One value a `choice` slot accepts, said by any of its keywords or picked by its key."""

    value: str
    keywords: tuple[str, ...] = ()
    key: str = ""
    patterns: tuple[str, ...] = ()
    # The keywords of each language, when given per language (`keywords` then holds them all).
    keywords_by_language: KeywordsByLanguage = ()


@dataclass(frozen=True, slots=True)
class Collect(NodeKind):
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

    kind: ClassVar[str] = "collect"
    listens: ClassVar[bool] = True

    def targets(self) -> tuple[str, ...]:
        return (self.next, *_on_max(self.escalation))

    def retarget(self, rename: Rename) -> Collect:
        return replace(
            self,
            id=rename(self.id),
            next=rename(self.next),
            escalation=self.escalation.retarget(rename),
        )


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
class Branch(NodeKind):
    """Goes to the first case whose conditions hold, else to the default."""

    id: str
    cases: tuple[Case, ...]
    default: str

    kind: ClassVar[str] = "branch"

    def targets(self) -> tuple[str, ...]:
        return (*(case.next for case in self.cases), self.default)

    def through(self) -> tuple[str, ...]:
        return self.targets()

    def retarget(self, rename: Rename) -> Branch:
        cases = tuple(replace(c, next=rename(c.next)) for c in self.cases)
        return replace(self, id=rename(self.id), cases=cases, default=rename(self.default))


@dataclass(frozen=True, slots=True)
class TransferTarget:
    """Where a transfer goes: exactly one kind, with its value."""

    kind: str  # phone_number | skill_queue | skill_queue_name | agent_id | ivr_flow | sip_uri
    value: str


# Why a transfer failed, as flows name it (`on_busy`, `{transfer.failure}`); UNKNOWN_FAILURE
# when the platform did not say or said something else.
TRANSFER_FAILURES = ("busy", "no_answer", "rejected", "unreachable")
UNKNOWN_FAILURE = "unknown"


@dataclass(frozen=True, slots=True)
class Transfer(NodeKind):
    """Plays a prompt, then transfers; on failure goes where the reason leads.

    Attributes:
        on_failure: Where a failed transfer goes when no reason-specific target applies.
        on_busy, on_no_answer, on_rejected, on_unreachable: Where it goes when the platform
            says it failed for that reason ("": to `on_failure`).
    """

    id: str
    prompt: PromptSpec
    target: TransferTarget
    on_failure: str
    parallel: bool = False
    monitored: bool = False
    caller_id: str = ""
    timeout_ms: int = 0
    on_busy: str = ""
    on_no_answer: str = ""
    on_rejected: str = ""
    on_unreachable: str = ""

    kind: ClassVar[str] = "transfer"
    may_end: ClassVar[bool] = True

    def on_failed(self, failure: str) -> str:
        """Where the call goes when the transfer failed for `failure` (TRANSFER_FAILURES, or
        UNKNOWN_FAILURE)."""
        specific: str = getattr(self, f"on_{failure}") if failure in TRANSFER_FAILURES else ""
        return specific or self.on_failure

    def failure_targets(self) -> tuple[tuple[str, str], ...]:
        """(reason, node) for each reason with a target of its own, in TRANSFER_FAILURES order."""
        named = ((failure, getattr(self, f"on_{failure}")) for failure in TRANSFER_FAILURES)
        return tuple((failure, target) for failure, target in named if target)

    def targets(self) -> tuple[str, ...]:
        return (*(target for _, target in self.failure_targets()), self.on_failure)

    def retarget(self, rename: Rename) -> Transfer:
        def renamed(target: str) -> str:
            return rename(target) if target else ""

        return replace(
            self,
            id=rename(self.id),
            on_failure=rename(self.on_failure),
            on_busy=renamed(self.on_busy),
            on_no_answer=renamed(self.on_no_answer),
            on_rejected=renamed(self.on_rejected),
            on_unreachable=renamed(self.on_unreachable),
        )


@dataclass(frozen=True, slots=True)
class HangUp(NodeKind):
    """Plays a prompt, then hangs up; the dialogue is over."""

    id: str
    prompt: PromptSpec
    failed: bool = False

    kind: ClassVar[str] = "hangup"
    may_end: ClassVar[bool] = True

    def retarget(self, rename: Rename) -> HangUp:
        return replace(self, id=rename(self.id))


@dataclass(frozen=True, slots=True)
class RecordNode(NodeKind):
    """Plays a prompt, records the caller, keeps the recording's location in a slot."""

    id: str
    prompt: PromptSpec
    slot: str
    next: str
    max_duration_ms: int = 60_000
    end_silence_ms: int = 3_000
    beep: bool = True
    stop_key: str = "#"

    kind: ClassVar[str] = "record"

    def targets(self) -> tuple[str, ...]:
        return (self.next,)

    def retarget(self, rename: Rename) -> RecordNode:
        return replace(self, id=rename(self.id), next=rename(self.next))


@dataclass(frozen=True, slots=True)
class WaitNode(NodeKind):
    """Waits a while (e.g. while a back-end works), then goes on."""

    id: str
    duration_ms: int
    next: str

    kind: ClassVar[str] = "wait"

    def targets(self) -> tuple[str, ...]:
        return (self.next,)

    def hears_commands(self) -> bool:
        return True

    def retarget(self, rename: Rename) -> WaitNode:
        return replace(self, id=rename(self.id), next=rename(self.next))


@dataclass(frozen=True, slots=True)
class AiGatherNode(NodeKind):
    """Hands the caller to the platform's voice assistant to fill a parameter schema."""

    id: str
    greeting: str
    schema: dict[str, Any]
    next: str
    on_failure: str
    voice: str = ""
    user_response_timeout_ms: int = 0
    # The greeting of each language, when given per language (`greeting`: the default's).
    greetings: TextByLanguage = ()

    kind: ClassVar[str] = "ai_gather"

    def targets(self) -> tuple[str, ...]:
        return (self.next, self.on_failure)

    def retarget(self, rename: Rename) -> AiGatherNode:
        return replace(
            self, id=rename(self.id), next=rename(self.next), on_failure=rename(self.on_failure)
        )


@dataclass(frozen=True, slots=True)
class SetNode(NodeKind):
    """Sets slots or call parameters (`params.NAME`) to rendered templates, clears others."""

    id: str
    values: tuple[tuple[str, str], ...]
    clear: tuple[str, ...]
    next: str

    kind: ClassVar[str] = "set"

    def targets(self) -> tuple[str, ...]:
        return (self.next,)

    def through(self) -> tuple[str, ...]:
        return self.targets()

    def retarget(self, rename: Rename) -> SetNode:
        return replace(self, id=rename(self.id), next=rename(self.next))


@dataclass(frozen=True, slots=True)
class Fulfillment(NodeKind):
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

    kind: ClassVar[str] = "fulfillment"

    def targets(self) -> tuple[str, ...]:
        return (self.on_success, self.on_error, self.on_timeout)

    def through(self) -> tuple[str, ...]:
        return self.targets()

    def retarget(self, rename: Rename) -> Fulfillment:
        return replace(
            self,
            id=rename(self.id),
            on_success=rename(self.on_success),
            on_error=rename(self.on_error),
            on_timeout=rename(self.on_timeout),
        )


@dataclass(frozen=True, slots=True)
class HoursNode(NodeKind):
    """Goes to `open`, `closed` or `holiday` by the call's time against a schedule."""

    id: str
    schedule: Schedule
    open: str
    closed: str
    holiday: str
    timezone: str = ""

    kind: ClassVar[str] = "hours"

    def targets(self) -> tuple[str, ...]:
        return tuple(target for target in (self.open, self.closed, self.holiday) if target)

    def through(self) -> tuple[str, ...]:
        return self.targets()

    def retarget(self, rename: Rename) -> HoursNode:
        return replace(
            self,
            id=rename(self.id),
            open=rename(self.open),
            closed=rename(self.closed),
            holiday=rename(self.holiday) if self.holiday else "",
        )


@dataclass(frozen=True, slots=True)
class QueueStatusNode(NodeKind):
    """Asks the platform how a queue is doing (before a transfer), then goes on at `next`.

    The figures become `{queue.position}`, `{queue.wait_minutes}`, `{queue.agents_online}` and
    `{queue.agents_idle}`; a figure the platform could not tell has no value. A platform
    without CAPABILITY_QUEUE_STATUS is never asked: the call goes straight to `on_unavailable`.

    Attributes:
        queue: Which queue: kind current_queue (value ""), skill_queue or agent_id.
    """

    id: str
    queue: TransferTarget
    next: str
    on_unavailable: str
    kind: ClassVar[str] = "queue_status"

    def targets(self) -> tuple[str, ...]:
        return (self.next, self.on_unavailable)

    def hears_commands(self) -> bool:
        return True

    def retarget(self, rename: Rename) -> QueueStatusNode:
        return replace(
            self,
            id=rename(self.id),
            next=rename(self.next),
            on_unavailable=rename(self.on_unavailable),
        )


@dataclass(frozen=True, slots=True)
class AssistantNode(NodeKind):
    """Hands the call to the platform's own voice assistant; when it finishes, goes to `next`.

    How it ended becomes `{assistant.reason}`, `{assistant.duration_ms}` and
    `{assistant.transcript}`. A platform without CAPABILITY_VOICE_ASSISTANT goes straight to
    `on_unavailable`.

    Attributes:
        assistant_id: The platform's assistant id, a template (e.g. "{params.assistant_id}").
        greeting: What the assistant says first (a template; "" leaves it to the assistant).
        instructions: Instructions for this call (a template).
        context: The slots handed to the assistant, by name (those without a value are left out).
    """

    id: str
    assistant_id: str
    next: str
    on_unavailable: str
    greeting: str = ""
    instructions: str = ""
    context: tuple[str, ...] = ()
    # The greeting of each language, when given per language (`greeting`: the default's).
    greetings: TextByLanguage = ()
    kind: ClassVar[str] = "assistant"

    def targets(self) -> tuple[str, ...]:
        return (self.next, self.on_unavailable)

    def retarget(self, rename: Rename) -> AssistantNode:
        return replace(
            self,
            id=rename(self.id),
            next=rename(self.next),
            on_unavailable=rename(self.on_unavailable),
        )


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
    | QueueStatusNode
    | AssistantNode
)
ListeningNode = Menu | Collect


def _on_max(escalation: Escalation) -> tuple[str, ...]:
    return escalation.targets()


@dataclass(frozen=True, slots=True)
class Command:
    """A global command, recognised in any listening node: go somewhere, or repeat."""

    intent: str
    keywords: tuple[str, ...]
    goto: str = ""
    repeat: bool = False
    key: str = ""
    patterns: tuple[str, ...] = ()
    # The keywords of each language, when given per language (`keywords` then holds them all).
    keywords_by_language: KeywordsByLanguage = ()


@dataclass(frozen=True, slots=True)
class Defaults:
    """Flow-wide settings every node falls back on."""

    on_max_attempts: str
    # Kind-specific limit targets, before on_max_attempts ("": not set); see Escalation.leave_to.
    on_max_no_input: str = ""
    on_max_no_match: str = ""
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
    # 87: "billion" is only 85.7 similar to "billing" and must not match it, while "operater" →
    # "operator" (87.5) and "bills" → "bill" (88.9) should.
    fuzzy_threshold: float = 87.0


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
        language: The language calls start in (the first of `languages`, when declared).
        timezone: IANA time zone for relative dates, clock times and business hours.
        synonyms: Folded word → its whole synonym group; a keyword matches its group too.
        nlu: The external understanding hook, if any.
        languages: Every language the flow speaks, the default first; empty for a flow of one
            language (`language:` alone), which plays every prompt item as written.
        voices: The TTS voice of each language, when `voice:` is given per language (`voice`
            is then the default language's).
        built: Response parts that depend only on this flow and what their key names, built on
            first use and shared by every call (`responses.once`); not part of what the flow
            says, so it is neither compared nor shown, and a copy of the flow starts empty.
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
    languages: tuple[str, ...] = ()
    voices: TextByLanguage = ()
    built: dict[Hashable, Any] = field(default_factory=dict, init=False, compare=False, repr=False)
