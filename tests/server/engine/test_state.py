"""The stored call state: states written by earlier versions still decode, and flags and the
barge-in policy are explicit fields, not counters."""

from __future__ import annotations

import io
from typing import Any

import pytest

from dialogue.v1 import dialogue_pb2 as pb
from server.config import DEMO_FLOWS
from server.engine.interpreter import Decision
from server.engine.state import FAILURES, NO_MATCH, CallState, decode, encode
from server.tools.common import Conversation
from server.tools.conversation_tests import run_paths


def test_a_state_written_by_the_earlier_encoding_decodes_to_the_explicit_fields() -> None:
    old = (
        b'{"c":"call-1","f":"carrier-zh","g":"BARGE_IN_MODE_SPEECH:300",'
        b'"k":{"confirming":1,"deferred":1,"failures":2,"no_match":1},"n":"ask","u":3,"v":"1"}'
    )

    state = decode(old)

    assert state == CallState(
        "call-1",
        "carrier-zh",
        "1",
        "ask",
        counters={NO_MATCH: 1, FAILURES: 2},
        turn=3,
        barge_in_mode=pb.BARGE_IN_MODE_SPEECH,
        min_speech_ms=300,
        deferred=True,
        confirming=True,
    )


def test_an_earlier_flag_counter_at_zero_is_no_flag() -> None:
    state = decode(b'{"c":"call-1","k":{"deferred":0,"no_input":1}}')

    assert (state.deferred, state.counters) == (False, {"no_input": 1})


def test_the_barge_in_policy_is_stored_as_two_numbers() -> None:
    state = CallState("call-1", barge_in_mode=pb.BARGE_IN_MODE_ANY, min_speech_ms=0)

    assert encode(state) == b'{"c":"call-1","g":[4,0]}'
    assert decode(encode(state)) == state


def test_the_calls_language_is_stored_and_a_state_without_it_is_in_the_default() -> None:
    switched = CallState("call-1", "carrier-intl", "1", "main_menu", language="en-US")
    assert b'"l":"en-US"' in encode(switched)
    assert decode(encode(switched)) == switched
    # Written before the field existed (or in the default language): "", the flow's default.
    assert decode(b'{"c":"call-1","f":"carrier-intl","n":"main_menu","v":"1"}').language == ""
    assert b'"l"' not in encode(CallState("call-1", language=""))


def test_empty_values_are_left_out_and_the_keys_sorted() -> None:
    state = CallState(
        "call-1",
        "carrier-zh",
        node="main_menu",
        slots={"phone": "13800138000"},
        counters={},
        turn=2,
        over=False,
        capabilities=(pb.CAPABILITY_QUEUE_STATUS,),
        deferred=True,
    )

    assert encode(state) == (
        b'{"c":"call-1","d":true,"f":"carrier-zh","n":"main_menu",'
        b'"s":{"phone":"13800138000"},"u":2,"x":['
        + str(pb.CAPABILITY_QUEUE_STATUS).encode()
        + b"]}"
    )
    assert decode(encode(state)) == state


def test_every_state_of_the_demo_conversations_decodes_to_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The service keeps the state it wrote and uses it instead of decoding the stored bytes
    # (server.service._WrittenStates): the two must be the same state. Here every demo flow's
    # conversation tests run with each turn's state replaced by its decoded encoding.
    states: list[CallState] = []
    send = Conversation.send

    def send_through_the_codec(self: Conversation, *args: Any, **kwargs: Any) -> Decision:
        decision = send(self, *args, **kwargs)
        states.append(decision.state)
        assert decode(encode(decision.state)) == decision.state
        self.state = decode(encode(decision.state))
        return decision

    monkeypatch.setattr(Conversation, "send", send_through_the_codec)
    tally = run_paths([DEMO_FLOWS], None, io.StringIO())
    assert tally.failed == 0
    assert tally.passed >= 80
    assert any(state.slots for state in states)
    assert any(state.queue for state in states)
