"""The pure step function: (flow, state, event) → (state, decision). No I/O, no clock.

A turn either starts the flow, or applies one event at the node the call waits at, then runs
straight-through nodes (say, branch, set, hours, fulfillment) until a node needs the platform.
Prompts met on the way are carried into that node's action, since platforms execute one
instruction per callback.

Time comes in with the request (`occurred_at`, else the `now` argument), never from a clock.
HTTP hooks (external understanding, fulfillment) are not called here: a turn that reaches one
stops with `Decision.pending_hook`; the caller performs it and calls `resume` with the results
so far, which runs the same turn again from the same state (see `server.engine.hooks`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from google.protobuf import json_format

from common.jsontext import json_text
from dialogue.v1 import dialogue_pb2 as pb
from server.engine import hooks, languages, matching, responses, slots
from server.engine.flow import (
    TRANSFER_FAILURES,
    UNKNOWN_FAILURE,
    AiGatherNode,
    AssistantNode,
    Branch,
    Collect,
    Command,
    Flow,
    Fulfillment,
    HangUp,
    HoursNode,
    ListeningNode,
    Menu,
    Node,
    PromptSpec,
    QueueStatusNode,
    RecordNode,
    Say,
    SetNode,
    Transfer,
    WaitNode,
)
from server.engine.hooks import HookCall, HookResult, NluAnswer
from server.engine.state import FAILURES, NO_INPUT, NO_MATCH, CallState
from server.engine.turn import Decision, FlowRuntimeError, NeedHook, TurnBase


def decide(
    flow: Flow | None,
    state: CallState | None,
    request: pb.DecideNextActionRequest,
    *,
    hook_results: Sequence[HookResult] = (),
    now: datetime | None = None,
) -> Decision:
    """Applies one event to a call.

    Args:
        flow: The call's flow; None only for a call that ends before it ever started.
        state: The call's state, or None for a call the server has not seen.
        request: A validated request.
        hook_results: Results of the hooks this turn reached so far, in order (see `resume`).
        now: The call's time when the request has no `occurred_at` (timezone-aware); relative
            dates and business hours need one or the other.

    Returns:
        The new state (turn counted) and the response; or, when the turn reached a hook beyond
        `hook_results`, a decision whose `pending_hook` says what to call.
    """
    try:
        return _decide(flow, state, request, hook_results, now)
    except NeedHook as need:
        return Decision(need.state, pb.DecideNextActionResponse(), need.call)


def resume(
    flow: Flow | None,
    state: CallState | None,
    request: pb.DecideNextActionRequest,
    hook_results: Sequence[HookResult],
    *,
    now: datetime | None = None,
) -> Decision:
    """Runs a turn again with the results of the hooks it reached (the same flow, state and
    request as the `decide` that returned the pending hook, and every result so far)."""
    return decide(flow, state, request, hook_results=hook_results, now=now)


__all__ = [
    "MAX_HOOKS_PER_TURN",
    "Decision",
    "FlowRuntimeError",
    "HookAnswerer",
    "TooManyHooksError",
    "decide",
    "resume",
    "run_turn",
]

# A turn reaches each hook at most once; this only stops a runaway flow from looping here.
MAX_HOOKS_PER_TURN = 32
HookAnswerer = Callable[[HookCall], Awaitable[HookResult]]


class TooManyHooksError(FlowRuntimeError):
    """A turn reached more hooks than any flow can (MAX_HOOKS_PER_TURN)."""


async def run_turn(
    flow: Flow | None,
    state: CallState | None,
    request: pb.DecideNextActionRequest,
    answer: HookAnswerer,
    *,
    now: datetime | None = None,
) -> Decision:
    """Decides a turn to its end, asking `answer` for each hook it reaches, one after another:
    the one hook driver, used by the service (HTTP) and the tools (given answers alike).

    Args:
        flow, state, request, now: As for `decide`.
        answer: Performs one hook; it never raises, a failure is a result.

    Raises:
        TooManyHooksError: the turn reached more than MAX_HOOKS_PER_TURN hooks.
    """
    results: list[HookResult] = []
    decision = decide(flow, state, request, now=now)
    while decision.pending_hook is not None:
        if len(results) >= MAX_HOOKS_PER_TURN:
            raise TooManyHooksError(f"the turn reached more than {MAX_HOOKS_PER_TURN} hooks")
        results.append(await answer(decision.pending_hook))
        decision = resume(flow, state, request, results, now=now)
    return decision


def _decide(
    flow: Flow | None,
    state: CallState | None,
    request: pb.DecideNextActionRequest,
    hook_results: Sequence[HookResult],
    now: datetime | None,
) -> Decision:
    event = request.WhichOneof("event")
    if state is None and (flow is None or event == "call_ended"):
        # A hang-up for a call we never saw still gets a clean end, and is remembered so
        # that late events of the call do not start a flow.
        tombstone = CallState(request.call.call_id, "", "", "", over=True)
        return _Turn(None, tombstone, request).finish_over("call ended before the dialogue started")
    if state is None:
        assert flow is not None
        turn = _Turn(flow, _new_state(flow, request), request, hook_results, now)
        return turn.start(event)
    if state.over or flow is None:
        return _Turn(flow, state, request).finish_over("the dialogue is over")
    return _Turn(flow, state, request, hook_results, now).apply(event)


def _new_state(flow: Flow, request: pb.DecideNextActionRequest) -> CallState:
    return CallState(
        call_id=request.call.call_id,
        flow_id=flow.id,
        flow_version=flow.version,
        node=flow.start,
        caller=request.call.caller,
        callee=request.call.callee,
    )


class _Turn(TurnBase):
    """One turn: the events per node kind, understanding, and running nodes."""

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
        at = _AT.get(type(node))
        if at is None:
            # Hang-up ends the dialogue and branches never wait, so the call cannot rest there.
            raise FlowRuntimeError(f"call rests at {type(node).__name__} node '{node.id}'")
        return at(self, node, event)

    # -- events per kind of node ----------------------------------------------------------

    def _at_listening(self, node: ListeningNode, event: str | None) -> Decision:
        request = self.request
        confirming = isinstance(node, Collect) and self._confirming()
        if event == "speech_recognized":
            text = request.speech_recognized.text
            if not text.strip():
                return self._escalate(node, NO_MATCH, "empty transcript")
            self._heard_language()
            command = self._command(text=text)
            if command is not None:
                return command
            if confirming:
                assert isinstance(node, Collect)
                return self._confirm_answer(node, text=text)
            answer = self._nlu(node, text)
            return (
                self._choose(node, text=text, nlu=answer)
                if isinstance(node, Menu)
                else self._fill(node, text=text, nlu=answer)
            )
        if event == "digits_entered":
            digits = request.digits_entered.digits
            if not digits:
                return self._escalate(node, NO_INPUT, "no keys pressed")
            if isinstance(node, Menu):
                command = self._command(key=digits)
                return command or self._choose(node, key=digits)
            if confirming:
                return self._confirm_answer(node, key=digits)
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
                    prompts=pb.Prompts(
                        barge_in=responses.barge_in_of(self.f.defaults, [self._prompt_of(node)])
                    ),
                    digits=responses.digits(self.f, node, confirming=self._confirming()),
                    speech=responses.speech(
                        self.f, node, confirming=self._confirming(), language=self.language
                    ),
                )
            )
        self.note = f"{event} does not apply at {node.id}; prompting again"
        return self.run(node.id)

    def _at_transfer(self, node: Transfer, event: str | None) -> Decision:
        if event == "transfer_finished":
            result = self.request.transfer_finished
            if result.outcome == pb.TRANSFER_OUTCOME_SUCCEEDED:
                return self.finish_over(f"transferred to {node.target.kind} {node.target.value}")
            failure = _FAILURES.get(result.failure, UNKNOWN_FAILURE)
            self._update(transfer_failure=failure)
            said = "" if failure == UNKNOWN_FAILURE else f" ({failure})"
            self.note = f"transfer failed{said}: {result.reason}".strip(": ")
            return self.run(node.on_failed(failure))
        if event in ("playback_finished", "no_input"):
            # The platform played the prompts but did not transfer (Aliyun's first answer of an
            # inbound call cannot): ask for the transfer again rather than leave the caller.
            self.note = "transfer not started yet: asking again"
            prompts = pb.Prompts(barge_in=responses.barge_in_of(self.f.defaults, [node.prompt]))
            return self._respond(
                play_and_transfer=pb.PlayAndTransfer(
                    prompts=prompts, transfer=responses.transfer(node, self.state.slots)
                )
            )
        return self._keep_playing(f"{event} while transferring")

    def _at_record(self, node: RecordNode, event: str | None) -> Decision:
        if event == "recording_finished":
            self._update(
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
        command = self._spoken_command(event)
        if command is not None:
            return command
        return self._keep_playing(f"{event} during an announcement")

    def _deferred(self, node: PromptlessNode, event: str | None) -> Decision | None:
        """While the prompts before a node without prompts play: the decision, else None."""
        if not self.state.deferred:
            return None
        # A platform error means nothing is playing any more: waiting on would be dead air.
        if event in ("playback_finished", "no_input", "platform_error"):
            self._update(deferred=False)
            return self._act_without_prompts(node)
        return self._keep_playing(f"{event} before {node.id}")

    def _spoken_command(self, event: str | None) -> Decision | None:
        """A global command said while the call waits at a node that does not listen."""
        if event != "speech_recognized":
            return None
        self._heard_language()
        return self._command(text=self.request.speech_recognized.text)

    def _at_wait(self, node: WaitNode, event: str | None) -> Decision:
        deferred = self._deferred(node, event)
        if deferred is not None:
            return deferred
        command = self._spoken_command(event)
        if command is not None:
            return command
        return self.run(node.next)

    def _at_queue_status(self, node: QueueStatusNode, event: str | None) -> Decision:
        deferred = self._deferred(node, event)
        if deferred is not None:
            return deferred
        if event == "queue_status_reported":
            # The figures themselves came with the request (see __init__).
            self.note = "queue status reported"
            return self.run(node.next)
        if event in ("no_input", "no_match", "platform_error"):
            self.note = f"queue status unavailable ({event})"
            return self.run(node.on_unavailable)
        command = self._spoken_command(event)
        if command is not None:
            return command
        return self._keep_playing(f"{event} while asking for the queue status")

    def _at_assistant(self, node: AssistantNode, event: str | None) -> Decision:
        deferred = self._deferred(node, event)
        if deferred is not None:
            return deferred
        if event == "assistant_finished":
            finished = self.request.assistant_finished
            transcript = "\n".join(f"{m.role}: {m.content}" for m in finished.transcript)
            ended = {"reason": finished.reason, "transcript": transcript}
            if finished.duration_ms:
                ended["duration_ms"] = str(finished.duration_ms)
            self._update(assistant={k: v for k, v in ended.items() if v})
            self.note = f"assistant finished ({finished.reason or 'no reason given'})"
            return self.run(node.next)
        if event == "platform_error":
            self.note = "assistant failed (platform error)"
            return self.run(node.on_unavailable)
        return self._keep_playing(f"{event} while the assistant has the call")

    def _at_ai_gather(self, node: AiGatherNode, event: str | None) -> Decision:
        deferred = self._deferred(node, event)
        if deferred is not None:
            return deferred
        if event == "ai_gather_finished":
            gathered = self.request.ai_gather_finished
            values = json_format.MessageToDict(gathered.parameters)
            slots = {
                **self.state.slots,
                **{name: json_text(value) for name, value in values.items()},
            }
            self._update(slots=slots)
            self.note = "AI gather complete" if gathered.complete else "AI gather incomplete"
            return self.run(node.next if gathered.complete else node.on_failure)
        if event in ("no_input", "no_match", "platform_error"):
            self.note = f"AI gather failed ({event})"
            return self.run(node.on_failure)
        return self._keep_playing(f"{event} during AI gather")

    def _barge_in(self) -> Decision:
        """Judges an interruption by the policy of the prompts actually sent last."""
        mode = self.state.barge_in_mode or pb.BARGE_IN_MODE_ANY
        heard = self.request.barged_in.speech_duration_ms
        if mode not in (pb.BARGE_IN_MODE_SPEECH, pb.BARGE_IN_MODE_ANY):
            return self._keep_playing(f"speech barge-in not allowed here (spoke {heard} ms)")
        if heard < self.state.min_speech_ms:
            return self._keep_playing(
                f"barge-in too short (spoke {heard} ms, needs {self.state.min_speech_ms} ms)"
            )
        self.note = f"caller spoke {heard} ms over the prompt: stop it"
        return self._respond(stop_playing=pb.StopPlaying())

    # -- understanding ----------------------------------------------------------------------

    def _command(self, *, text: str = "", key: str = "") -> Decision | None:
        """The first global command whose key was pressed or whose keyword/pattern was said:
        in the call's language first, then in the other declared ones (which it switches to)."""
        if key:
            command = next((c for c in self.f.commands if c.key and c.key == key), None)
            return None if command is None else self._run_command(command, "")
        if not text:
            return None
        for index, language in enumerate(languages.order(self.f, self.state.language)):
            first = index == 0
            for command in self.f.commands:
                words = self._expand(languages.keywords_in(command, language, first=first))
                if matching.find_keyword(text, words) or (
                    first and matching.find_pattern(text, command.patterns)
                ):
                    if not first:
                        self._switch_language(language, f"said '{command.intent}' in it")
                    return self._run_command(command, "")
        return None

    def _heard_language(self) -> None:
        """The platform's recognised language, when the flow declares it, becomes the call's."""
        heard = languages.declared(self.f, self.request.speech_recognized.language)
        self._switch_language(heard, "recognised by the platform")

    def _understand(
        self, text: str, said: Sequence[languages.Said], threshold: float
    ) -> tuple[matching.Understood, str]:
        """`languages.understand` over choices and commands, in the call's language first."""

        def candidates(language: str, first: bool) -> list[matching.Candidate]:
            return [
                matching.Candidate(
                    self._expand(languages.keywords_in(s, language, first=first)),
                    s.patterns if first else (),
                )
                for s in said
            ]

        order = languages.order(self.f, self.state.language)
        return languages.understand(text, order, candidates, fuzzy_threshold=threshold)

    def _run_command(self, command: Command, how: str) -> Decision:
        self.intent = command.intent
        if command.repeat:
            self.note = "repeat requested" + (f" ({how})" if how else "")
            return self._replay()
        self.note = f"global command '{command.intent}'" + (f" ({how})" if how else "")
        return self.run(command.goto)

    def _nlu(self, node: ListeningNode, text: str) -> NluAnswer | None:
        """Asks the flow's external understanding, if any; None means: use the built-ins."""
        config = self.f.nlu
        if config is None or not node.nlu:
            return None
        intents = [c.intent for c in node.choices] if isinstance(node, Menu) else []
        expected: dict[str, object] = {"intents": [*intents, *(c.intent for c in self.f.commands)]}
        if isinstance(node, Collect):
            expected.update(slot=node.slot, slot_type=node.slot_type.value)
        payload = {
            "kind": hooks.NLU,
            "text": text,
            "language": self.language,
            "asr_confidence": round(self.request.speech_recognized.confidence, 4),
            "expected": expected,
            **self._hook_context(node.id),
        }
        result = self._hook(node.id, hooks.NLU, config.url, payload, config.timeout_ms)
        answer, problem = hooks.read_nlu(result)
        if answer is None:
            self.remarks.append(f"nlu failed ({problem}): built-in matchers")
            return None
        if answer.confidence < config.min_confidence:
            self.remarks.append(
                f"nlu '{answer.intent}' at {answer.confidence:g} is below {config.min_confidence:g}: built-in matchers"
            )
            return None
        return answer

    def _nlu_command(self, answer: NluAnswer) -> Decision | None:
        command = next((c for c in self.f.commands if c.intent == answer.intent), None)
        if command is None:
            return None
        self._merge(answer.slots)
        return self._run_command(command, f"nlu {answer.confidence:g}")

    def _choose(
        self, node: Menu, *, text: str = "", key: str = "", nlu: NluAnswer | None = None
    ) -> Decision:
        if nlu is not None and nlu.intent:
            choice = next((c for c in node.choices if c.intent == nlu.intent), None)
            if choice is not None:
                self._merge(nlu.slots)
                self.intent = choice.intent
                self.note = f"chose '{choice.intent}' by nlu {nlu.confidence:g}"
                self._switch_language(choice.language, f"chose '{choice.intent}'")
                return self.run(choice.next)
            command = self._nlu_command(nlu)
            if command is not None:
                return command
            self.remarks.append(f"nlu intent '{nlu.intent}' is not offered here: built-in matchers")
        if text:
            key = matching.spoken_key(text)
        if key:
            best = next((choice for choice in node.choices if choice.key == key), None)
            if best is None:
                # A spoken key ("零") may be a global command's key, as it would be when pressed.
                command = self._command(key=key) if text else None
                return command or self._escalate(node, NO_MATCH, f"'{key}' matches no choice")
            self.intent = best.intent
            self.note = f"chose '{best.intent}' by key {key}"
            self._switch_language(best.language, f"chose '{best.intent}'")
            return self.run(best.next)
        # Commands go first: they win fuzzy ties, as they win exact matches (checked before).
        commands = self.f.commands
        found, heard_in = self._understand(text, [*commands, *node.choices], self._threshold(node))
        hit = found.hit
        if hit is None:
            return self._escalate(node, NO_MATCH, f"'{text}' matches no choice")
        names = [c.intent for c in commands] + [c.intent for c in node.choices]
        if found.ties:
            tied = ", ".join(f"'{names[t.index]}' ({t.describe()})" for t in found.ties)
            self.remarks.append(f"tied with {tied}: the one listed first wins")
        self._switch_language(heard_in, f"said {hit.describe()}")
        if hit.index < len(commands):
            return self._run_command(commands[hit.index], hit.describe())
        best = node.choices[hit.index - len(commands)]
        self.intent = best.intent
        self.note = f"chose '{best.intent}' by voice ({hit.describe()})"
        self._switch_language(best.language, f"chose '{best.intent}'")
        return self.run(best.next)

    def _fill(
        self, node: Collect, *, text: str = "", key: str = "", nlu: NluAnswer | None = None
    ) -> Decision:
        if nlu is not None:
            command = self._nlu_command(nlu) if nlu.intent else None
            if command is not None:
                return command
            said = nlu.slots.get(node.slot, "")
            if said:
                check = self._parse(node, text=said)
                if check.value is not None:
                    self._merge(nlu.slots)
                    return self._accept(node, check.value, f"by nlu {nlu.confidence:g}")
                self.remarks.append(f"nlu value '{said}' rejected ({check.problem}): built-in")
        check = self._parse(node, text=text, key=key)
        if check.value is None:
            if text and self._threshold(node) > 0:
                # Not an answer, but maybe a command said loosely ("operater").
                found, heard_in = self._understand(text, self.f.commands, self._threshold(node))
                near = found.hit
                if near is not None:
                    self._switch_language(heard_in, f"said {near.describe()}")
                    return self._run_command(self.f.commands[near.index], near.describe())
            reprompts = node.invalid or None
            return self._escalate(node, NO_MATCH, f"{node.slot}: {check.problem}", reprompts)
        self._switch_language(check.language, f"answered in it: '{check.value}'")
        return self._accept(node, check.value, "")

    def _parse(self, node: Collect, *, text: str = "", key: str = "") -> slots.SlotCheck:
        return slots.parse_slot(
            node,
            text=text,
            key=key,
            today=self._today(),
            synonyms=self.f.synonyms,
            fuzzy_threshold=self._threshold(node),
            languages=languages.order(self.f, self.state.language),
        )

    def _accept(self, node: Collect, value: str, how: str) -> Decision:
        self.intent = node.slot
        self._update(slots={**self.state.slots, node.slot: value})
        suffix = f" ({how})" if how else ""
        if node.confirm is not None:
            # A fresh start for the confirmation question: its own no-input/no-match counts.
            self._update(counters=_fresh(self.state.counters), confirming=True)
            self.note = f"{node.slot} collected{suffix}; confirming"
            return self._listen(node, [])
        self.note = f"{node.slot} collected{suffix}"
        return self.run(node.next)

    def _confirm_answer(self, node: Collect, *, text: str = "", key: str = "") -> Decision:
        reply = slots.read_confirmation(
            node,
            text=text,
            key=key,
            today=self._today(),
            synonyms=self.f.synonyms,
            fuzzy_threshold=self._threshold(node),
            languages=languages.order(self.f, self.state.language),
        )
        answer = reply.answer
        if answer is None:
            return self._escalate(
                node, NO_MATCH, f"confirming {node.slot}: '{key or text}' is neither yes nor no"
            )
        self.intent = node.slot
        if answer:
            self.note = f"{node.slot} confirmed"
            return self.run(node.next)
        self._unconfirm(node)
        if reply.correction is not None:
            # "不对，是六位" / "no, it's 6": the new value, read back for confirmation in turn.
            return self._accept(node, reply.correction, "corrected while confirming")
        self.note = f"{node.slot} not confirmed: asking again"
        return self._listen(node, [])

    def _unconfirm(self, node: Collect) -> None:
        """Forgets the value awaiting confirmation and the confirmation itself."""
        slots_left = {k: v for k, v in self.state.slots.items() if k != node.slot}
        self._update(slots=slots_left, confirming=False)

    def _confirming(self) -> bool:
        return self.state.confirming

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
        self._update(counters={**self.state.counters, kind: count, FAILURES: failures})
        limit = (
            (node.escalation.max_no_input or defaults.max_no_input)
            if kind == NO_INPUT
            else (node.escalation.max_no_match or defaults.max_no_match)
        )
        self.note = (
            f"{kind.replace('_', '-')} {count} of {limit} at {node.id} ({why}); failures {failures}"
        )
        leaving = ""
        if (
            defaults.max_failures
            and failures >= defaults.max_failures
            and defaults.on_failure_budget
        ):
            self.note += f": failure budget spent, going to {defaults.on_failure_budget}"
            leaving = defaults.on_failure_budget
        elif count >= limit:
            leaving = node.escalation.leave_to(kind, defaults)
            self.note += f": giving up, going to {leaving}"
        if leaving:
            if isinstance(node, Collect) and self._confirming():
                self._unconfirm(node)  # a value never confirmed is not kept
            return self.run(leaving)
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
        node = self.f.nodes.get(self.state.node)
        if isinstance(node, Collect) and self._confirming():
            return self._listen(node, [])  # the confirmation question, not the question before
        state = self.state
        # The values, not the state: the turn changes its copy in place (`_update`).
        counters, deferred, confirming = state.counters, state.deferred, state.confirming
        decision = self.run(state.entry or state.node)
        self._update(counters=counters, deferred=deferred, confirming=confirming)
        return Decision(self.state, decision.response)

    def run(self, node_id: str) -> Decision:
        """Runs from node_id through say/branch nodes to the next node that needs the platform."""
        pending: list[PromptSpec] = []
        entry = node_id
        for _ in range(len(self.f.nodes) + 1):
            node = self.f.nodes[node_id]
            step = _STEP.get(type(node))
            if step is not None:
                node_id = step(self, node)
                if isinstance(node, Fulfillment):
                    # A repeat replays what follows the service call and never calls it again.
                    entry = node_id
                continue
            unavailable = self._unavailable(node)
            if unavailable:
                node_id = unavailable
                continue
            if isinstance(node, Say):
                pending.append(node.prompt)
                if not node.wait_for_playback:
                    node_id = node.next
                    continue
            self._update(
                node=node.id,
                entry=entry,
                counters=_fresh(self.state.counters),
                deferred=False,
                confirming=False,
            )
            return self._act(node, pending)
        raise FlowRuntimeError(
            f"flow {self.f.id} loops from '{entry}' without waiting for the caller"
        )

    def _act(self, node: Node, pending: list[PromptSpec]) -> Decision:
        act = _ACT.get(type(node))
        if act is not None:
            return act(self, node, pending)
        if pending:
            # Nodes without prompts of their own play these first.
            self._update(deferred=True)
            return self._respond(play=pb.Play(prompts=self._prompts(pending)))
        return self._act_without_prompts(node)  # type: ignore[arg-type]

    def _act_say(self, node: Say, pending: list[PromptSpec]) -> Decision:
        return self._respond(play=pb.Play(prompts=self._prompts(pending)))

    def _act_transfer(self, node: Transfer, pending: list[PromptSpec]) -> Decision:
        return self._respond(
            play_and_transfer=pb.PlayAndTransfer(
                prompts=self._prompts([*pending, node.prompt]),
                transfer=responses.transfer(node, self.state.slots),
            )
        )

    def _act_hang_up(self, node: HangUp, pending: list[PromptSpec]) -> Decision:
        reason = pb.HANG_UP_REASON_FAILED if node.failed else pb.HANG_UP_REASON_COMPLETED
        self._update(over=True)
        return self._respond(
            play_and_hang_up=pb.PlayAndHangUp(
                prompts=self._prompts([*pending, node.prompt]), reason=reason
            ),
            over=True,
        )

    def _act_record(self, node: RecordNode, pending: list[PromptSpec]) -> Decision:
        record = pb.Record(
            prompts=self._prompts([*pending, node.prompt]),
            max_duration_ms=node.max_duration_ms,
            end_silence_ms=node.end_silence_ms,
            beep=node.beep,
            stop_key=node.stop_key,
        )
        return self._respond(record=record)

    def _act_without_prompts(self, node: PromptlessNode) -> Decision:
        if isinstance(node, WaitNode):
            return self._respond(wait=pb.Wait(duration_ms=node.duration_ms))
        if isinstance(node, QueueStatusNode):
            return self._respond(query_queue=responses.query_queue(node.queue))
        if isinstance(node, AssistantNode):
            render = self._render_text
            handed = responses.hand_to_assistant(
                self.f,
                assistant_id=render(node.assistant_id)[0],
                greeting=render(
                    languages.text_in(node.greeting, node.greetings, self.f, self.state.language)
                )[0],
                instructions=render(node.instructions)[0],
                context={s: self.state.slots[s] for s in node.context if s in self.state.slots},
                language=self.language,
            )
            return self._respond(hand_to_assistant=handed)
        greeting = self._render_text(
            languages.text_in(node.greeting, node.greetings, self.f, self.state.language)
        )[0]
        return self._respond(ai_gather=responses.ai_gather(self.f, node, greeting, self.language))

    def _unavailable(self, node: Node) -> str:
        """Where a node needing a capability the platform lacks goes instead ("" if it has it)."""
        needed = _NEEDS.get(type(node))
        if needed is None or needed in self.state.capabilities:
            return ""
        assert isinstance(node, QueueStatusNode | AssistantNode)
        self.remarks.append(
            f"{node.id}: the platform lacks {pb.Capability.Name(needed)}, "  # type: ignore[arg-type]
            f"going to {node.on_unavailable}"
        )
        return node.on_unavailable

    # -- straight-through nodes: set, hours, fulfillment ------------------------------------

    # -- hooks and time ---------------------------------------------------------------------

    # -- building the response ------------------------------------------------------------

    def _prompt_of(self, node: ListeningNode) -> PromptSpec:
        """What the node asks now: its prompt, or its confirmation question while confirming."""
        if isinstance(node, Collect) and node.confirm is not None and self._confirming():
            return node.confirm
        return node.prompt

    def _listen(self, node: ListeningNode, lead: list[PromptSpec]) -> Decision:
        confirming = self._confirming()
        flow = self.f
        language = self.language
        digits, speech = responses.once(
            flow,
            (_LISTENING, node.id, confirming, language),
            lambda: (
                responses.digits(flow, node, confirming=confirming),
                responses.speech(flow, node, confirming=confirming, language=language),
            ),
        )
        return self._respond(
            play_and_listen=pb.PlayAndListen(
                prompts=self._prompts([*lead, self._prompt_of(node)]), digits=digits, speech=speech
            )
        )


def _fresh(counters: dict[str, int]) -> dict[str, int]:
    """Counters for a newly entered node: per-node counts restart, the call-wide budget stays."""
    return {FAILURES: counters[FAILURES]} if counters.get(FAILURES) else {}


# The key prefix of a listening node's digit and speech settings, built once per flow.
_LISTENING = "listening"
# Nodes that need the platform, but carry no prompts: the prompts before them play first.
PromptlessNode = WaitNode | AiGatherNode | QueueStatusNode | AssistantNode
_At = Callable[[_Turn, Any, str | None], Decision]
# What an event does at each kind of node the call can wait at (the events per kind are in
# each handler); call_ended, call_started and barged_in are the same everywhere (`apply`).
_AT: dict[type[Node], _At] = {
    Menu: _Turn._at_listening,
    Collect: _Turn._at_listening,
    Transfer: _Turn._at_transfer,
    RecordNode: _Turn._at_record,
    WaitNode: _Turn._at_wait,
    AiGatherNode: _Turn._at_ai_gather,
    QueueStatusNode: _Turn._at_queue_status,
    AssistantNode: _Turn._at_assistant,
    Say: _Turn._at_playback,
}
# Straight-through nodes: each does its work and says where the turn goes on.
_STEP: dict[type[Node], Callable[[_Turn, Any], str]] = {
    Branch: _Turn._branch,
    SetNode: _Turn._set_and_go_on,
    HoursNode: _Turn._hours,
    Fulfillment: _Turn._fulfil,
}
# The action of a node reached by the turn (PromptlessNode kinds: `_act_without_prompts`).
_ACT: dict[type[Node], Callable[[_Turn, Any, list[PromptSpec]], Decision]] = {
    Say: _Turn._act_say,
    Menu: _Turn._listen,
    Collect: _Turn._listen,
    Transfer: _Turn._act_transfer,
    HangUp: _Turn._act_hang_up,
    RecordNode: _Turn._act_record,
}
# How a transfer's failure is named in flows (`on_busy`, `{transfer.failure}`); any other
# value, UNSPECIFIED included, is UNKNOWN_FAILURE.
_FAILURES: dict[int, str] = {
    pb.TransferFailure.Value(f"TRANSFER_FAILURE_{name.upper()}"): name for name in TRANSFER_FAILURES
}
# Node kinds that need a platform capability, and go to their `on_unavailable` without it.
_NEEDS: dict[type[Node], int] = {
    QueueStatusNode: pb.CAPABILITY_QUEUE_STATUS,
    AssistantNode: pb.CAPABILITY_VOICE_ASSISTANT,
}
