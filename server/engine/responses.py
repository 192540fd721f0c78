"""Pure builders of the response messages a turn sends: prompts, listening, transfers, the
platform actions of nodes without prompts, and the response envelope.

The interpreter decides what happens (state transitions); these functions only say it in the
contract's words, from the flow, the node and values the interpreter hands them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

from dialogue.v1 import dialogue_pb2 as pb
from server.engine import languages, matching
from server.engine.flow import (
    AiGatherNode,
    BargeIn,
    Defaults,
    Flow,
    ListeningNode,
    Menu,
    PromptSpec,
    SlotType,
    Transfer,
    TransferTarget,
)
from server.engine.state import CallState

T = TypeVar("T")
# Renders a template: (text, the values its placeholders took).
Render = Callable[[str], tuple[str, dict[str, str]]]

_MAX_TOKEN = 64
# The first element of the keys `prompts` memoises under (see `once`).
_PROMPTS = "prompts"
# Keys the platform collects per slot type (digits: the node's own min/max_length).
_KEY_LENGTHS = {
    SlotType.MOBILE_CN: (11, 11),
    SlotType.E164: (8, 17),  # with 00 in front of the country code
    SlotType.DATE: (4, 8),  # MMDD or YYYYMMDD
    SlotType.TIME: (3, 4),  # HMM or HHMM
}
_BARGE_IN_INPUTS = {
    BargeIn.NONE: frozenset(),
    BargeIn.SPEECH: frozenset({"speech"}),
    BargeIn.KEYS: frozenset({"keys"}),
    BargeIn.ANY: frozenset({"speech", "keys"}),
}
_BARGE_IN_MODES = {
    frozenset(): pb.BARGE_IN_MODE_NONE,
    frozenset({"speech"}): pb.BARGE_IN_MODE_SPEECH,
    frozenset({"keys"}): pb.BARGE_IN_MODE_KEYS,
    frozenset({"speech", "keys"}): pb.BARGE_IN_MODE_ANY,
}


def expand(flow: Flow, keywords: tuple[str, ...]) -> tuple[str, ...]:
    """Keywords with their synonyms (the flow's synonym groups)."""
    return matching.expand(keywords, flow.synonyms) if flow.synonyms else keywords


def barge_in_of(defaults: Defaults, specs: Sequence[PromptSpec]) -> pb.BargeIn:
    """The strictest policy of the specs combined: each may only narrow what interrupts."""
    allowed = _BARGE_IN_INPUTS[BargeIn.ANY]
    min_speech = 0
    for spec in specs:
        allowed &= _BARGE_IN_INPUTS[spec.barge_in or defaults.barge_in]
        min_speech = max(
            min_speech,
            spec.min_speech_ms if spec.min_speech_ms is not None else defaults.min_speech_ms,
        )
    # The longest minimum whatever the mode (docs/flows.md section 8): a platform that cannot
    # stop speech barge-in still learns how long the flow wanted the caller to speak.
    return pb.BargeIn(mode=_BARGE_IN_MODES[allowed], min_speech_ms=min_speech)


def once(flow: Flow, key: Hashable, build: Callable[[], T]) -> T:
    """`build()`, built once per flow: for parts of responses that depend only on the flow and
    on what `key` names (e.g. a node id and whether it confirms): whatever else a part depends
    on, such as the call's language, belongs in its key.

    The value is shared by every call of the flow: never change it. Passing a message to a
    message's constructor, as the builders here do, copies it.
    """
    try:
        value: T = flow.built[key]
    except KeyError:
        value = flow.built[key] = build()
    return value


def prompts(
    flow: Flow, specs: Sequence[PromptSpec], render: Render, language: str = ""
) -> pb.Prompts:
    """The prompts of specs, in order, TTS templates rendered, under their combined policy;
    of each, the items of the call's `language` (see `languages.items`).

    Prompts without placeholders are built once per flow (see `once`: never change what this
    returns), keyed by what they depend on besides the flow: the language and the specs.
    """
    key = (_PROMPTS, language, *specs)
    shared: pb.Prompts | None = flow.built.get(key)
    if shared is not None:
        return shared
    built = pb.Prompts(barge_in=barge_in_of(flow.defaults, specs))
    fixed = True
    for spec in specs:
        for item in languages.items(flow, spec, language):
            if item.media_name:
                built.items.add().audio.media_name = item.media_name
            elif item.url:
                built.items.add().audio.url = item.url
            else:
                text, values = render(item.text)
                fixed = fixed and not values
                built.items.add().tts.CopyFrom(
                    pb.TextToSpeech(
                        text=text,
                        language=item.language or flow.language,
                        voice=item.voice or languages.voice(flow, item.language or flow.language),
                        speed=item.speed,
                        template=item.text if values else "",
                        template_values=values,
                    )
                )
    if fixed:
        flow.built[key] = built
    return built


def digits(flow: Flow, node: ListeningNode, *, confirming: bool) -> pb.DigitCollection | None:
    """The keys a listening node collects, or None when it takes none."""
    if isinstance(node, Menu):
        keys = "".join(
            sorted({c.key for c in node.choices if c.key} | {c.key for c in flow.commands if c.key})
        )
        return _one_key(flow, keys) if keys else None
    # A confirmation takes keys 1/2 whatever the slot takes: it asks for them ("确认请按1"), and
    # keypad-only platforms have no other way to answer.
    if confirming:
        return _one_key(flow, "12")
    if not node.keys:
        return None
    kind = node.slot_type
    if kind is SlotType.YES_NO:
        return _one_key(flow, "12")
    if kind is SlotType.CHOICE:
        keys = "".join(sorted({o.key for o in node.options if o.key}))
        return _one_key(flow, keys) if keys else None
    low, high = _KEY_LENGTHS.get(kind, (1, 12))
    if kind is SlotType.DIGITS:
        low, high = node.min_length, node.max_length
    # On a keypad '*' is an amount's decimal point, unless it ends the entry.
    point = "*" if kind is SlotType.AMOUNT and node.terminator != "*" else ""
    spec = pb.DigitCollection(
        min_digits=low,
        max_digits=high,
        terminator=node.terminator,
        valid_keys="0123456789" + point + node.terminator,
    )
    return _timed(flow, spec)


def _one_key(flow: Flow, keys: str) -> pb.DigitCollection:
    return _timed(flow, pb.DigitCollection(min_digits=1, max_digits=1, valid_keys=keys))


def _timed(flow: Flow, spec: pb.DigitCollection) -> pb.DigitCollection:
    spec.first_digit_timeout_ms = flow.defaults.no_input_timeout_ms
    spec.inter_digit_timeout_ms = flow.defaults.inter_digit_timeout_ms
    return spec


def speech(
    flow: Flow, node: ListeningNode, *, confirming: bool, language: str = ""
) -> pb.SpeechRecognition | None:
    """How a listening node recognises speech, in the call's language, with its words in that
    language as hints; None: no speech. A confirmation always listens for a spoken yes/no too,
    as it does for keys."""
    if not node.speech and not confirming:
        return None
    current = languages.spoken(flow, language)
    hints: list[str] = []
    if isinstance(node, Menu):
        hints = [
            k
            for c in node.choices
            for k in expand(flow, languages.keywords_in(c, current, first=True))
        ]
    elif node.slot_type is SlotType.CHOICE and not confirming:
        hints = [
            k
            for o in node.options
            for k in expand(
                flow,
                (
                    *(() if o.keywords_by_language else (o.value,)),
                    *languages.keywords_in(o, current, first=True),
                ),
            )
        ]
    return pb.SpeechRecognition(
        language=current,
        no_input_timeout_ms=flow.defaults.no_input_timeout_ms,
        hints=hints,
    )


def transfer(node: Transfer, slots: Mapping[str, str]) -> pb.Transfer:
    """A transfer node's transfer, handing the slots on as associated data."""
    built = pb.Transfer(
        mode=pb.TRANSFER_MODE_PARALLEL if node.parallel else pb.TRANSFER_MODE_BLIND,
        monitored=node.monitored,
        caller_id=node.caller_id,
        associated_data=slots,
        timeout_ms=node.timeout_ms,
    )
    kind, value = node.target.kind, node.target.value
    if kind == "skill_queue":
        built.skill_queue.access_code = value
    elif kind == "skill_queue_name":
        built.skill_queue.name = value
    else:
        setattr(built, kind, value)
    return built


def ai_gather(flow: Flow, node: AiGatherNode, greeting: str, language: str = "") -> pb.AiGather:
    """An AI gather node's action in the call's language, its greeting already rendered."""
    gather = pb.AiGather(
        greeting=greeting,
        language=languages.spoken(flow, language),
        voice=node.voice or languages.voice(flow, language),
        user_response_timeout_ms=node.user_response_timeout_ms,
    )
    gather.parameters_schema.update(node.schema)
    return gather


def query_queue(queue: TransferTarget) -> pb.QueryQueue:
    """A queue status node's question: current_queue, skill_queue or agent_id."""
    if queue.kind == "current_queue":
        return pb.QueryQueue(current_queue=pb.CurrentQueue())
    return pb.QueryQueue(**{queue.kind: queue.value})  # type: ignore[arg-type]


def hand_to_assistant(
    flow: Flow,
    *,
    assistant_id: str,
    greeting: str,
    instructions: str,
    context: Mapping[str, str],
    language: str = "",
) -> pb.HandToAssistant:
    """An assistant node's hand-over in the call's language, its templates already rendered."""
    return pb.HandToAssistant(
        assistant_id=assistant_id,
        greeting=greeting,
        instructions=instructions,
        context=context,
        language=languages.spoken(flow, language),
    )


def response(
    state: CallState, *, intent: str, note: str, over: bool = False, **action: object
) -> pb.DecideNextActionResponse:
    """The response envelope: the action, the call data to carry on, and the diagnostics.

    The call data goes with every response, the final ones too: parameters a flow sets right
    before hanging up or transferring are for the platform (and whoever takes the call) then.
    Only the continuation token is left out once the dialogue is over: no callback echoes it.
    """
    built = pb.DecideNextActionResponse(dialogue_over=over, **action)  # type: ignore[arg-type]
    built.call_data.parameters.update(state.params)
    built.call_data.passthrough = state.passthrough
    if not over:
        built.call_data.continuation_token = token(state.node, state.turn)
    diagnostics = built.diagnostics
    diagnostics.flow_id = state.flow_id
    diagnostics.flow_version = state.flow_version
    diagnostics.node_id = state.node
    diagnostics.matched_intent = intent
    diagnostics.turn = state.turn
    diagnostics.note = note
    return built


def token(node: str, turn: int) -> str:
    """The continuation token: node and turn, in the token's alphabet and at most 64 long."""
    text = f"{node.replace('.', '-')}-{turn}"
    if len(text) <= _MAX_TOKEN:
        return text
    # Ids inside nested subflows can be long: keep the readable start, made unique by a digest.
    tail = f"-{hashlib.sha256(node.encode()).hexdigest()[:12]}-{turn}"
    return text[: _MAX_TOKEN - len(tail)] + tail
