"""client_state and command ids: stable, small, and checked on the way back."""

from __future__ import annotations

import base64

from gateways.telnyx import client_state, inbound
from tests.gateways.telnyx.test_mapping import _encoded


def test_command_ids_are_stable_per_event_and_distinct_across_events() -> None:
    first = client_state.command_id("e1", 0, "speak")
    assert first == client_state.command_id("e1", 0, "speak")
    assert (
        len(
            {
                first,
                client_state.command_id("e2", 0, "speak"),
                client_state.command_id("e1", 1, "speak"),
            }
        )
        == 3
    )
    assert len({first, client_state.command_id("e1", 0, "hangup")}) == 2


def test_the_request_id_follows_the_event_id() -> None:
    assert inbound.request_id("0ccc7b54") == "telnyx-0ccc7b54"
    long = inbound.request_id("x" * 200)
    assert len(long) <= 128
    assert long == inbound.request_id("x" * 200)


def test_client_state_round_trips_and_foreign_states_are_ignored() -> None:
    state = client_state.ClientState(
        client_state.KIND_THEN,
        ref="e1",
        outbound=True,
        next_command="transfer",
        next_body={"to": "+18005550101"},
        stop_key="#",
    )
    assert client_state.decode_state(client_state.encode_state(state)) == state
    foreign = [
        None,
        "",
        42,
        "aGF2ZSBhIG5pY2UgZGF5ID1d",  # the spec's example: "have a nice day =]"
        "not base64!",
        base64.b64encode(b"[1,2]").decode(),
        _encoded({"v": 2, "k": "listen"}),
        _encoded({"v": 1, "k": "rm -rf"}),
        "A" * 5000,
    ]
    for text in foreign:
        assert client_state.decode_state(text) is None, text
    odd = client_state.decode_state(_encoded({"v": 1, "k": "then", "n": 5, "b": [1], "o": "yes"}))
    assert odd == client_state.ClientState(client_state.KIND_THEN)
