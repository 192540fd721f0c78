"""The pure step function: (flow, state, event) → (state, decision). No I/O, no clock.

A turn either starts the flow, or applies one event at the node the call waits at, then runs
straight-through nodes (say, branch) until a node needs the platform. Prompts met on the way
are carried into that node's action, since platforms execute one instruction per callback.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

from google.protobuf import json_format

from dialogue.v1 import dialogue_pb2 as pb
from server.engine import matching
from server.engine.flow import (
    AiGatherNode,
    BargeIn,
    Branch,
    Collect,
    Condition,
    Flow,
    HangUp,
    ListeningNode,
    Menu,
    Node,
    PromptSpec,
    RecordNode,
    Say,
    SlotType,
    Transfer,
    WaitNode,
)
from server.engine.state import FAILURES, NO_INPUT, NO_MATCH, CallState

# Set while a node that cannot carry prompts (wait, AI gather) waits for the prompts spoken
# on the way to it to finish playing.
_DEFERRED = "deferred"
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
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


class FlowRuntimeError(Exception):
    """The flow cannot continue (e.g. its graph loops without reaching the platform)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The state after a turn and the response to send."""

    state: CallState
    response: pb.DecideNextActionResponse


def decide(
    flow: Flow | None, state: CallState | None, request: pb.DecideNextActionRequest
) -> Decision:
    """Applies one event to a call.

    Args:
        flow: The call's flow; None only for a call that ends before it ever started.
        state: The call's state, or None for a call the server has not seen.
        request: A validated request.

    Returns:
        The new state (turn counted) and the response.
    """
    event = request.WhichOneof("event")
    if state is None and (flow is None or event == "call_ended"):
        # A hang-up for a call we never saw still gets a clean end, and is remembered so
        # that late events of the call do not start a flow.
        tombstone = CallState(request.call.call_id, "", "", "", over=True)
        return _Turn(None, tombstone, request).finish_over("call ended before the dialogue started")
    if state is None:
        assert flow is not None
        return _Turn(flow, _new_state(flow, request), request).start(event)
    if state.over or flow is None:
        return _Turn(flow, state, request).finish_over("the dialogue is over")
    return _Turn(flow, state, request).apply(event)


def _new_state(flow: Flow, request: pb.DecideNextActionRequest) -> CallState:
    return CallState(
        call_id=request.call.call_id,
        flow_id=flow.id,
        flow_version=flow.version,
        node=flow.start,
        caller=request.call.caller,
        callee=request.call.callee,
    )


class _Turn:
    """One turn's working set: the flow, the evolving state, and what to explain."""

    def __init__(
        self, flow: Flow | None, state: CallState, request: pb.DecideNextActionRequest
    ) -> None:
        self.flow = flow
        self.request = request
        self.intent = ""
        self.note = ""
        params = dict(state.params)
        params.update(request.call_data.parameters)
        self.state = replace(
            state,
            turn=state.turn + 1,
            params=params,
            passthrough=request.call_data.passthrough or state.passthrough,
        )

    @property
    def f(self) -> Flow:
        assert self.flow is not None
        return self.flow

    # -- entry points ---------------------------------------------------------------------

    def start(self, event: str | None) -> Decision:
        if event != "call_started":
            self.note = f"call started by its first event ({event})"
        else:
            self.note = "call started"
        return self.run(self.f.start)

    def apply(self, event: str | None) -> Decision:
        if event == "call_ended":
            return self.finish_over(
                "caller hung up"
                if self.request.call_ended.hung_up_by == pb.HANG_UP_PARTY_CALLER
                else "call ended"
            )
        node = self.f.nodes.get(self.state.node)
        if node is None:
            raise FlowRuntimeError(
                f"node '{self.state.node}' is not in flow {self.f.id} {self.f.version}"
            )
        if event == "call_started":
            self.note = "call started again: replaying the last prompts"
            return self._replay()
        if event == "barged_in":
            return self._barge_in()
        if isinstance(node, Menu | Collect):
            return self._at_listening(node, event)
        if isinstance(node, Transfer):
            return self._at_transfer(node, event)
        if isinstance(node, RecordNode):
            return self._at_record(node, event)
        if isinstance(node, WaitNode | AiGatherNode):
            return self._at_deferred(node, event)
        if isinstance(node, Say):
            return self._at_playback(node, event)
        # Hang-up ends the dialogue and branches never wait, so the call cannot rest there.
        raise FlowRuntimeError(f"call rests at {type(node).__name__} node '{node.id}'")

    # -- events per kind of node ----------------------------------------------------------

    def _at_listening(self, node: ListeningNode, event: str | None) -> Decision:
        request = self.request
        if event == "speech_recognized":
            text = request.speech_recognized.text
            if not text.strip():
                return self._escalate(node, NO_MATCH, "empty transcript")
            command = self._command(text=text)
            if command is not None:
                return command
            return (
                self._choose(node, text=text)
                if isinstance(node, Menu)
                else self._fill(node, text=text)
            )
        if event == "digits_entered":
            digits = request.digits_entered.digits
            if not digits:
                return self._escalate(node, NO_INPUT, "no keys pressed")
            if isinstance(node, Menu):
                command = self._command(key=digits)
                return command or self._choose(node, key=digits)
            return self._fill(node, key=digits)
        if event == "no_input":
            return self._escalate(node, NO_INPUT, "caller silent")
        if event == "no_match":
            return self._escalate(node, NO_MATCH, "platform could not recognise the input")
        if event == "platform_error":
            error = request.platform_error
            return self._escalate(
                node, NO_MATCH, f"platform error {error.code} {error.message}".strip()
            )
        if event == "playback_finished":
            self.note = "prompts finished; still listening"
            return self._respond(
                play_and_listen=pb.PlayAndListen(
                    prompts=pb.Prompts(barge_in=self._barge_in_of([node.prompt])),
                    digits=self._digits(node),
                    speech=self._speech(node),
                )
            )
        self.note = f"{event} does not apply at {node.id}; prompting again"
        return self.run(node.id)

    def _at_transfer(self, node: Transfer, event: str | None) -> Decision:
        if event == "transfer_finished":
            result = self.request.transfer_finished
            if result.outcome == pb.TRANSFER_OUTCOME_SUCCEEDED:
                return self.finish_over(f"transferred to {node.target.kind} {node.target.value}")
            self.note = f"transfer failed: {result.reason}".strip(": ")
            return self.run(node.on_failure)
        if event in ("playback_finished", "no_input"):
            # The platform played the prompts but did not transfer (Aliyun's first answer of an
            # inbound call cannot): ask for the transfer again rather than leave the caller.
            self.note = "transfer not started yet: asking again"
            prompts = pb.Prompts(barge_in=self._barge_in_of([node.prompt]))
            return self._respond(
                play_and_transfer=pb.PlayAndTransfer(prompts=prompts, transfer=self._transfer(node))
            )
        return self._keep_playing(f"{event} while transferring")

    def _at_record(self, node: RecordNode, event: str | None) -> Decision:
        if event == "recording_finished":
            self.state = replace(
                self.state,
                slots={
                    **self.state.slots,
                    node.slot: self.request.recording_finished.recording_uri,
                },
            )
            return self.run(node.next)
        if event in ("no_input", "platform_error"):
            self.note = f"nothing recorded ({event})"
            return self.run(node.next)
        return self._keep_playing(f"{event} while recording")

    def _at_playback(self, node: Say, event: str | None) -> Decision:
        if event in ("playback_finished", "no_input", "platform_error"):
            return self.run(node.next)
        if event == "speech_recognized":
            command = self._command(text=self.request.speech_recognized.text)
            if command is not None:
                return command
        return self._keep_playing(f"{event} during an announcement")

    def _at_deferred(self, node: WaitNode | AiGatherNode, event: str | None) -> Decision:
        if self.state.count(_DEFERRED):
            # A platform error means nothing is playing any more: waiting on would be dead air.
            if event in ("playback_finished", "no_input", "platform_error"):
                self.state = self.state.with_counter(_DEFERRED, 0)
                return self._act_without_prompts(node)
            return self._keep_playing(f"{event} before {node.id}")
        if isinstance(node, WaitNode):
            if event == "speech_recognized":
                command = self._command(text=self.request.speech_recognized.text)
                if command is not None:
                    return command
            return self.run(node.next)
        if event == "ai_gather_finished":
            gathered = self.request.ai_gather_finished
            values = json_format.MessageToDict(gathered.parameters)
            slots = {
                **self.state.slots,
                **{name: _slot_text(value) for name, value in values.items()},
            }
            self.state = replace(self.state, slots=slots)
            self.note = "AI gather complete" if gathered.complete else "AI gather incomplete"
            return self.run(node.next if gathered.complete else node.on_failure)
        if event in ("no_input", "no_match", "platform_error"):
            self.note = f"AI gather failed ({event})"
            return self.run(node.on_failure)
        return self._keep_playing(f"{event} during AI gather")

    def _barge_in(self) -> Decision:
        """Judges an interruption by the policy of the prompts actually sent last."""
        mode_name, _, min_speech = (self.state.barge_in or "BARGE_IN_MODE_ANY:0").partition(":")
        mode = pb.BargeInMode.Value(mode_name)
        heard = self.request.barged_in.speech_duration_ms
        if mode in (pb.BARGE_IN_MODE_SPEECH, pb.BARGE_IN_MODE_ANY) and heard >= int(
            min_speech or 0
        ):
            self.note = f"caller spoke {heard} ms over the prompt: stop it"
            return self._respond(stop_playing=pb.StopPlaying())
        return self._keep_playing(f"barge-in not allowed here (spoke {heard} ms)")

    # -- understanding ----------------------------------------------------------------------

    def _command(self, *, text: str = "", key: str = "") -> Decision | None:
        for command in self.f.commands:
            hit = (key and key == command.key) or (
                text and matching.find_keyword(text, command.keywords)
            )
            if not hit:
                continue
            self.intent = command.intent
            if command.repeat:
                self.note = "repeat requested"
                return self._replay()
            self.note = f"global command '{command.intent}'"
            return self.run(command.goto)
        return None

    def _choose(self, node: Menu, *, text: str = "", key: str = "") -> Decision:
        if text:
            spoken_key = matching.spoken_digits(text)
            key = spoken_key if spoken_key is not None and len(spoken_key) == 1 else ""
        best, best_length = None, 0
        for choice in node.choices:
            if key:
                if key == choice.key:
                    best = choice
                    break
                continue
            found = matching.find_keyword(text, choice.keywords)
            # Longest keyword wins; on a tie the earlier choice wins (strict >).
            if found is not None and len(found) > best_length:
                best, best_length = choice, len(found)
        if best is None:
            # A spoken key ("零") may be a global command's key, as it would be when pressed.
            command = self._command(key=key) if text and key else None
            return command or self._escalate(node, NO_MATCH, f"'{key or text}' matches no choice")
        self.intent = best.intent
        self.note = f"chose '{best.intent}' by {'key ' + key if key else 'voice'}"
        return self.run(best.next)

    def _fill(self, node: Collect, *, text: str = "", key: str = "") -> Decision:
        value, problem = _parse_slot(node, text=text, key=key)
        if value is None:
            reprompts = node.invalid or None
            return self._escalate(node, NO_MATCH, f"{node.slot}: {problem}", reprompts)
        self.intent = node.slot
        self.note = f"{node.slot} collected"
        self.state = replace(self.state, slots={**self.state.slots, node.slot: value})
        return self.run(node.next)

    def _escalate(
        self,
        node: ListeningNode,
        kind: str,
        why: str,
        reprompts: tuple[PromptSpec, ...] | None = None,
    ) -> Decision:
        """VoiceXML-style: the n-th failure plays the n-th reprompt, the max-th leaves the node."""
        defaults = self.f.defaults
        count = self.state.count(kind) + 1
        failures = self.state.count(FAILURES) + 1
        self.state = self.state.with_counter(kind, count).with_counter(FAILURES, failures)
        limit = (
            (node.escalation.max_no_input or defaults.max_no_input)
            if kind == NO_INPUT
            else (node.escalation.max_no_match or defaults.max_no_match)
        )
        self.note = (
            f"{kind.replace('_', '-')} {count} of {limit} at {node.id} ({why}); failures {failures}"
        )
        if (
            defaults.max_failures
            and failures >= defaults.max_failures
            and defaults.on_failure_budget
        ):
            self.note += f": failure budget spent, going to {defaults.on_failure_budget}"
            return self.run(defaults.on_failure_budget)
        if count >= limit:
            target = node.escalation.on_max or defaults.on_max_attempts
            self.note += f": giving up, going to {target}"
            return self.run(target)
        if reprompts is None:
            node_list = node.escalation.no_input if kind == NO_INPUT else node.escalation.no_match
            reprompts = (
                node_list
                if node_list is not None
                else (defaults.no_input if kind == NO_INPUT else defaults.no_match)
            )
        lead = [reprompts[min(count, len(reprompts)) - 1]] if reprompts else []
        return self._listen(node, lead)

    # -- running nodes --------------------------------------------------------------------

    def _replay(self) -> Decision:
        """Runs the last chain again; a replay is not a new visit, so the counts stand."""
        counters = self.state.counters
        decision = self.run(self.state.entry or self.state.node)
        self.state = replace(self.state, counters=counters)
        return Decision(self.state, decision.response)

    def run(self, node_id: str) -> Decision:
        """Runs from node_id through say/branch nodes to the next node that needs the platform."""
        pending: list[PromptSpec] = []
        entry = node_id
        for _ in range(len(self.f.nodes) + 1):
            node = self.f.nodes[node_id]
            if isinstance(node, Branch):
                node_id = self._branch(node)
                continue
            if isinstance(node, Say):
                pending.append(node.prompt)
                if not node.wait_for_playback:
                    node_id = node.next
                    continue
            self.state = replace(
                self.state, node=node.id, entry=entry, counters=_fresh(self.state.counters)
            )
            return self._act(node, pending)
        raise FlowRuntimeError(
            f"flow {self.f.id} loops from '{entry}' without waiting for the caller"
        )

    def _act(self, node: Node, pending: list[PromptSpec]) -> Decision:
        if isinstance(node, Say):
            return self._respond(play=pb.Play(prompts=self._prompts(pending)))
        if isinstance(node, Menu | Collect):
            return self._listen(node, pending)
        if isinstance(node, Transfer):
            return self._respond(
                play_and_transfer=pb.PlayAndTransfer(
                    prompts=self._prompts([*pending, node.prompt]), transfer=self._transfer(node)
                )
            )
        if isinstance(node, HangUp):
            reason = pb.HANG_UP_REASON_FAILED if node.failed else pb.HANG_UP_REASON_COMPLETED
            self.state = replace(self.state, over=True)
            return self._respond(
                play_and_hang_up=pb.PlayAndHangUp(
                    prompts=self._prompts([*pending, node.prompt]), reason=reason
                ),
                over=True,
            )
        if isinstance(node, RecordNode):
            record = pb.Record(
                prompts=self._prompts([*pending, node.prompt]),
                max_duration_ms=node.max_duration_ms,
                end_silence_ms=node.end_silence_ms,
                beep=node.beep,
                stop_key=node.stop_key,
            )
            return self._respond(record=record)
        if pending:
            # Wait and AI gather carry no prompts of their own: play these first.
            self.state = self.state.with_counter(_DEFERRED, 1)
            return self._respond(play=pb.Play(prompts=self._prompts(pending)))
        assert isinstance(node, WaitNode | AiGatherNode)
        return self._act_without_prompts(node)

    def _act_without_prompts(self, node: WaitNode | AiGatherNode) -> Decision:
        if isinstance(node, WaitNode):
            return self._respond(wait=pb.Wait(duration_ms=node.duration_ms))
        gather = pb.AiGather(
            greeting=self._render_text(node.greeting)[0],
            language=self.f.language,
            voice=node.voice or self.f.voice,
            user_response_timeout_ms=node.user_response_timeout_ms,
        )
        gather.parameters_schema.update(node.schema)
        return self._respond(ai_gather=gather)

    def _branch(self, node: Branch) -> str:
        for case in node.cases:
            if all(self._holds(condition) for condition in case.conditions):
                return case.next
        return node.default

    def _holds(self, condition: Condition) -> bool:
        value = self._lookup(condition.slot)
        if condition.op == "present":
            return value is not None and value != ""
        if condition.op == "absent":
            return value is None or value == ""
        if condition.op == "not_equals":
            return value not in condition.values
        return value in condition.values  # equals / one_of

    # -- building the response ------------------------------------------------------------

    def _listen(self, node: ListeningNode, lead: list[PromptSpec]) -> Decision:
        return self._respond(
            play_and_listen=pb.PlayAndListen(
                prompts=self._prompts([*lead, node.prompt]),
                digits=self._digits(node),
                speech=self._speech(node),
            )
        )

    def _digits(self, node: ListeningNode) -> pb.DigitCollection | None:
        if isinstance(node, Menu):
            keys = "".join(
                sorted(
                    {c.key for c in node.choices if c.key}
                    | {c.key for c in self.f.commands if c.key}
                )
            )
            return (
                self._timed(pb.DigitCollection(min_digits=1, max_digits=1, valid_keys=keys))
                if keys
                else None
            )
        if not node.keys:
            return None
        if node.slot_type is SlotType.YES_NO:
            return self._timed(pb.DigitCollection(min_digits=1, max_digits=1, valid_keys="12"))
        low, high = (
            (node.min_length, node.max_length) if node.slot_type is SlotType.DIGITS else (1, 12)
        )
        spec = pb.DigitCollection(
            min_digits=low,
            max_digits=high,
            terminator=node.terminator,
            valid_keys="0123456789" + node.terminator,
        )
        return self._timed(spec)

    def _timed(self, spec: pb.DigitCollection) -> pb.DigitCollection:
        spec.first_digit_timeout_ms = self.f.defaults.no_input_timeout_ms
        spec.inter_digit_timeout_ms = self.f.defaults.inter_digit_timeout_ms
        return spec

    def _speech(self, node: ListeningNode) -> pb.SpeechRecognition | None:
        if not node.speech:
            return None
        hints = [k for c in node.choices for k in c.keywords] if isinstance(node, Menu) else []
        return pb.SpeechRecognition(
            language=self.f.language,
            no_input_timeout_ms=self.f.defaults.no_input_timeout_ms,
            hints=hints,
        )

    def _transfer(self, node: Transfer) -> pb.Transfer:
        transfer = pb.Transfer(
            mode=pb.TRANSFER_MODE_PARALLEL if node.parallel else pb.TRANSFER_MODE_BLIND,
            monitored=node.monitored,
            caller_id=node.caller_id,
            associated_data=self.state.slots,
            timeout_ms=node.timeout_ms,
        )
        kind, value = node.target.kind, node.target.value
        if kind == "skill_queue":
            transfer.skill_queue.access_code = value
        elif kind == "skill_queue_name":
            transfer.skill_queue.name = value
        else:
            setattr(transfer, kind, value)
        return transfer

    def _prompts(self, specs: list[PromptSpec]) -> pb.Prompts:
        policy = self._barge_in_of(specs)
        prompts = pb.Prompts(barge_in=policy)
        policy_text = f"{pb.BargeInMode.Name(policy.mode)}:{policy.min_speech_ms}"
        self.state = replace(self.state, barge_in=policy_text)
        for spec in specs:
            for item in spec.items:
                if item.media_name:
                    prompts.items.add().audio.media_name = item.media_name
                elif item.url:
                    prompts.items.add().audio.url = item.url
                else:
                    text, values = self._render_text(item.text)
                    prompts.items.add().tts.CopyFrom(
                        pb.TextToSpeech(
                            text=text,
                            language=item.language or self.f.language,
                            voice=item.voice or self.f.voice,
                            speed=item.speed,
                            template=item.text if values else "",
                            template_values=values,
                        )
                    )
        return prompts

    def _barge_in_of(self, specs: list[PromptSpec]) -> pb.BargeIn:
        """The strictest policy of the specs combined: each may only narrow what interrupts."""
        defaults = self.f.defaults
        allowed = _BARGE_IN_INPUTS[BargeIn.ANY]
        min_speech = 0
        for spec in specs:
            allowed &= _BARGE_IN_INPUTS[spec.barge_in or defaults.barge_in]
            min_speech = max(
                min_speech,
                spec.min_speech_ms if spec.min_speech_ms is not None else defaults.min_speech_ms,
            )
        return pb.BargeIn(
            mode=_BARGE_IN_MODES[allowed], min_speech_ms=min_speech if "speech" in allowed else 0
        )

    def _render_text(self, template: str) -> tuple[str, dict[str, str]]:
        values: dict[str, str] = {}

        def fill(found: re.Match[str]) -> str:
            value = self._lookup(found.group(1)) or ""
            values[found.group(1)] = value
            return value

        return _PLACEHOLDER.sub(fill, template), values

    def _lookup(self, name: str) -> str | None:
        if name.startswith("params."):
            return self.state.params.get(name.removeprefix("params."))
        if name == "call.caller":
            return self.state.caller
        if name == "call.callee":
            return self.state.callee
        return self.state.slots.get(name)

    def _keep_playing(self, why: str) -> Decision:
        self.note = f"{why}: carry on"
        return self._respond(keep_playing=pb.KeepPlaying())

    def finish_over(self, why: str) -> Decision:
        self.note = why
        self.state = replace(self.state, over=True)
        return self._respond(end_dialogue=pb.EndDialogue(), over=True)

    def _respond(self, *, over: bool = False, **action: object) -> Decision:
        response = pb.DecideNextActionResponse(dialogue_over=over, **action)  # type: ignore[arg-type]
        state = self.state
        if not over:
            response.call_data.parameters.update(state.params)
            response.call_data.passthrough = state.passthrough
            response.call_data.continuation_token = f"{state.node}-{state.turn}"
        diagnostics = response.diagnostics
        diagnostics.flow_id = state.flow_id
        diagnostics.flow_version = state.flow_version
        diagnostics.node_id = state.node
        diagnostics.matched_intent = self.intent
        diagnostics.turn = state.turn
        diagnostics.note = self.note
        return Decision(state, response)


def _slot_text(value: object) -> str:
    """Slot text for a gathered JSON value: whole numbers without ".0", JSON for structures."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _fresh(counters: dict[str, int]) -> dict[str, int]:
    """Counters for a newly entered node: per-node counts restart, the call-wide budget stays."""
    return {FAILURES: counters[FAILURES]} if counters.get(FAILURES) else {}


def _parse_slot(node: Collect, *, text: str, key: str) -> tuple[str | None, str]:
    """Returns (value, "") for acceptable input, or (None, what is wrong)."""
    kind = node.slot_type
    if kind is SlotType.YES_NO:
        answer = {"1": True, "2": False}.get(key) if key else matching.yes_or_no(text)
        return (
            (None, f"'{key or text}' is neither yes nor no")
            if answer is None
            else ("yes" if answer else "no", "")
        )
    if kind is SlotType.TEXT:
        value = (key or text).strip()
        return (value, "") if value else (None, "empty")
    if kind is SlotType.NUMBER:
        number = matching.spoken_number(key or text)
        if number is None:
            return None, f"'{key or text}' is not a number"
        check = matching.check_digits(str(number), node.min_length, node.max_length, node.pattern)
        return check.value, check.problem
    digits = key if key else matching.spoken_digits(text)
    if digits is None or not digits.isdigit():
        return None, f"'{key or text}' is not digits"
    check = matching.check_digits(digits, node.min_length, node.max_length, node.pattern)
    return check.value, check.problem
