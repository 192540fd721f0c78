"""A turn's working set and the work that does not depend on the event: rendering templates,
looking values up, straight-through nodes (branch, set, hours, fulfillment), hooks, time, and
sending the response. The interpreter's `_Turn` adds what events do at each kind of node.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from dialogue.v1 import dialogue_pb2 as pb
from server.engine import conditions, hooks, hours, languages, responses
from server.engine.flow import (
    Branch,
    Condition,
    Flow,
    Fulfillment,
    HoursNode,
    ListeningNode,
    PromptSpec,
    SetNode,
)
from server.engine.hooks import HookCall, HookResult
from server.engine.state import QUEUE_FIGURES, CallState

_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


class FlowRuntimeError(Exception):
    """The flow cannot continue (e.g. its graph loops without reaching the platform)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The state after a turn and the response to send — or the hook the turn waits for.

    When `pending_hook` is set the turn is not finished: `state` and `response` mean nothing
    and must not be stored or sent; perform the hook and `resume`.
    """

    state: CallState
    response: pb.DecideNextActionResponse
    pending_hook: HookCall | None = None


class NeedHook(Exception):  # noqa: N818 - control flow, not an error
    """Raised inside a turn that reaches a hook it has no result for yet."""

    def __init__(self, call: HookCall, state: CallState) -> None:
        super().__init__(call.node)
        self.call = call
        self.state = state


class TurnBase:
    """One turn's working set: the flow, the evolving state, and what to explain."""

    def __init__(
        self,
        flow: Flow | None,
        state: CallState,
        request: pb.DecideNextActionRequest,
        hook_results: Sequence[HookResult] = (),
        now: datetime | None = None,
    ) -> None:
        self.flow = flow
        self.request = request
        self.intent = ""
        self.note = ""
        # Said after the note: what hooks, hours and fulfillment did on the way.
        self.remarks: list[str] = []
        self.hook_results = hook_results
        self.hooks_used = 0
        self._now = now
        parameters = request.call_data.parameters
        params = {**state.params, **parameters} if parameters else state.params
        # The turn's own copy of the state, the only one it makes: see `_update`.
        self.state = replace(
            state,
            turn=state.turn + 1,
            params=params,
            passthrough=request.call_data.passthrough or state.passthrough,
            # The gateway says on every request what its platform can do: the latest wins.
            capabilities=tuple(request.call.capabilities),
        )
        if request.HasField("queue_status"):
            # A report is a snapshot: a figure it leaves out is unknown now, not the old value.
            status = request.queue_status
            figures = {
                name: getattr(status, name)
                for name in QUEUE_FIGURES
                if status.HasField(name)  # type: ignore[arg-type]
            }
            self._update(queue=figures)

    @cached_property
    def now(self) -> datetime | None:
        """The call's time: the request's `occurred_at`, else the caller's `now` (computed when
        a turn first needs it: most turns never look at the clock)."""
        if self.request.HasField("occurred_at"):
            return self.request.occurred_at.ToDatetime(tzinfo=UTC)
        return self._now

    def _update(self, **changes: Any) -> None:
        """Changes fields of the turn's own copy of the state, in place.

        `__init__` copies the state the turn was given (which stays as it was); nobody else
        holds that copy until the turn returns it in its decision, so changing it in place is
        safe, and a turn makes one copy instead of one per change (`replace` of this frozen
        dataclass of 20 fields was a third of a decision's time). Code that keeps values to
        restore them must keep the values, not `self.state`; a misspelt field name raises.
        """
        state = self.state
        for name, value in changes.items():
            object.__setattr__(state, name, value)

    @property
    def f(self) -> Flow:
        assert self.flow is not None
        return self.flow

    @property
    def language(self) -> str:
        """The language the call speaks now (the flow's default unless it switched)."""
        return languages.spoken(self.f, self.state.language)

    def _switch_language(self, language: str, why: str) -> None:
        """From now on the call speaks `language` (a declared one); "" or the same: no change."""
        if not language or language == self.language:
            return
        self._update(language="" if language == self.f.language else language)
        self.remarks.append(f"language {language} ({why})")

    def _threshold(self, node: ListeningNode) -> float:
        return (
            node.fuzzy_threshold
            if node.fuzzy_threshold is not None
            else self.f.defaults.fuzzy_threshold
        )

    def _expand(self, keywords: tuple[str, ...]) -> tuple[str, ...]:
        return responses.expand(self.f, keywords)

    def _merge(self, values: dict[str, str]) -> None:
        if values:
            self._update(slots={**self.state.slots, **values})

    def _branch(self, node: Branch) -> str:
        for case in node.cases:
            if all(self._holds(condition) for condition in case.conditions):
                return case.next
        return node.default

    def _holds(self, condition: Condition) -> bool:
        # A pattern's braces are repetition ("\\d{9}"), not placeholders: it is used as written.
        operands = (
            condition.values
            if condition.op == "matches"
            else tuple(self._render_text(value)[0] for value in condition.values)
        )
        return conditions.holds(condition.op, self._lookup(condition.slot), operands)

    def _set_and_go_on(self, node: SetNode) -> str:
        self._set(node)
        return node.next

    def _set(self, node: SetNode) -> None:
        # Every template is rendered before anything is assigned, so one node can swap values.
        rendered = [(name, self._render_text(template)[0]) for name, template in node.values]
        for name in node.clear:
            self._assign(name, None)
        for name, value in rendered:
            self._assign(name, value)

    def _assign(self, name: str, value: str | None) -> None:
        if name.startswith("params."):
            params = dict(self.state.params)
            params.pop(name.removeprefix("params."), None)
            if value is not None:
                params[name.removeprefix("params.")] = value
            self._update(params=params)
            return
        values = {k: v for k, v in self.state.slots.items() if k != name}
        if value is not None:
            values[name] = value
        self._update(slots=values)

    def _hours(self, node: HoursNode) -> str:
        zone = node.timezone or self.f.timezone
        local = self._local_now(zone)
        if local is None:
            self.remarks.append(f"{node.id}: the call's time is unknown, taking closed")
            return node.closed
        status = hours.status(node.schedule, local)
        self.remarks.append(f"{node.id}: {status} at {local:%a %Y-%m-%d %H:%M} {zone}")
        if status == hours.OPEN:
            return node.open
        if status == hours.HOLIDAY and node.holiday:
            return node.holiday
        return node.closed

    def _fulfil(self, node: Fulfillment) -> str:
        payload = {
            "kind": hooks.FULFILLMENT,
            **self._hook_context(node.id),
            "slots": dict(self.state.slots),
            "params": dict(self.state.params),
            "args": {name: self._render_text(value)[0] for name, value in node.args},
        }
        result = self._hook(node.id, hooks.FULFILLMENT, node.url, payload, node.timeout_ms)
        if result.outcome is hooks.Outcome.TIMEOUT:
            self.remarks.append(f"{node.id}: timed out ({result.detail or 'no answer'})")
            return node.on_timeout
        answer, problem = hooks.read_fulfillment(result)
        if answer is None:
            self.remarks.append(f"{node.id}: failed ({problem})")
            return node.on_error
        self._merge(answer.slots)
        if answer.params:
            self._update(params={**self.state.params, **answer.params})
        self.remarks.append(f"{node.id}: ok")
        return node.on_success

    def _hook_context(self, node_id: str) -> dict[str, object]:
        return {
            "flow": {"id": self.f.id, "version": self.f.version},
            "node": node_id,
            "call": {
                "id": self.state.call_id,
                "request_id": self.request.request_id,
                "turn": self.state.turn,
                "caller": self.state.caller,
                "callee": self.state.callee,
            },
        }

    def _hook(
        self, node_id: str, kind: str, url: str, payload: dict[str, object], timeout_ms: int
    ) -> HookResult:
        """This turn's next hook result; stops the turn (to be resumed) when there is none yet."""
        if self.hooks_used < len(self.hook_results):
            result = self.hook_results[self.hooks_used]
            self.hooks_used += 1
            return result
        key = f"{self.state.call_id}:{self.request.request_id}:{node_id}"
        raise NeedHook(HookCall(kind, node_id, url, payload, timeout_ms, key), self.state)

    def _local_now(self, zone: str) -> datetime | None:
        return None if self.now is None else self.now.astimezone(ZoneInfo(zone))

    def _today(self) -> date | None:
        local = self._local_now(self.f.timezone)
        return None if local is None else local.date()

    def _prompts(self, specs: list[PromptSpec]) -> pb.Prompts:
        """The prompts to send; the state remembers their policy to judge a barge-in by."""
        built = responses.prompts(self.f, specs, self._render_text, self.language)
        self._update(
            barge_in_mode=built.barge_in.mode,
            min_speech_ms=built.barge_in.min_speech_ms,
        )
        return built

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
        if name.startswith("queue."):
            return _queue_figure(self.state.queue, name.removeprefix("queue."))
        if name.startswith("assistant."):
            return self.state.assistant.get(name.removeprefix("assistant."))
        if name == "transfer.failure":
            return self.state.transfer_failure or None
        if name in ("call.date", "call.time"):
            local = self._local_now(self.f.timezone)
            if local is None:
                return None
            return local.date().isoformat() if name == "call.date" else f"{local:%H:%M}"
        return self.state.slots.get(name)

    def _keep_playing(self, why: str) -> Decision:
        self.note = f"{why}: carry on"
        return self._respond(keep_playing=pb.KeepPlaying())

    def finish_over(self, why: str) -> Decision:
        self.note = why
        self._update(over=True)
        return self._respond(end_dialogue=pb.EndDialogue(), over=True)

    def _respond(self, *, over: bool = False, **action: object) -> Decision:
        note = "; ".join(part for part in (self.note, *self.remarks) if part)
        built = responses.response(self.state, intent=self.intent, note=note, over=over, **action)
        return Decision(self.state, built)


def _queue_figure(figures: dict[str, int], name: str) -> str | None:
    """A `{queue.NAME}` value; None (no value) when the platform did not tell it."""
    if name == "wait_minutes":
        wait_ms = figures.get("estimated_wait_ms")
        return None if wait_ms is None else str(math.ceil(wait_ms / 60_000))
    value = figures.get(name)
    return None if value is None else str(value)
