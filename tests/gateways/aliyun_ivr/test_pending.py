"""The gateway's note in dynamic_id: every note round-trips; nothing malformed is trusted."""

from __future__ import annotations

import pytest

from gateways.aliyun_ivr.pending import (
    ASSISTANT,
    HANG_UP,
    LISTENING,
    MENU_DEFERRED,
    PARALLEL,
    QUEUE_QUERY,
    TRANSFER,
    TRANSFER_E164,
    Pending,
    join_dynamic_id,
    split_dynamic_id,
)

NOTES = [
    Pending(),
    Pending(HANG_UP),
    Pending(TRANSFER, number="13711111111"),
    Pending(TRANSFER_E164, number="+14155550100"),
    Pending(PARALLEL, monitored=True),
    Pending(PARALLEL, monitored=False),
    Pending(MENU_DEFERRED),
    Pending(QUEUE_QUERY),
    Pending(ASSISTANT),
    Pending(LISTENING, listen_s=5),
]


@pytest.mark.parametrize("token", ["main_menu-3", ""])
@pytest.mark.parametrize("pending", NOTES, ids=lambda p: p.note() or "nothing")
def test_every_note_round_trips(token: str, pending: Pending) -> None:
    dynamic_id = join_dynamic_id(token, pending)
    assert split_dynamic_id(dynamic_id) == (token, pending)
    # Only characters the platform allows in callback data, no `+` (a URL would make it a space).
    assert set(dynamic_id) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
    )


def test_only_hang_ups_and_transfers_are_decisions() -> None:
    decided = {pending.kind for pending in NOTES if pending.decided}
    assert decided == {HANG_UP, TRANSFER, TRANSFER_E164, PARALLEL}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("42.5", ("", Pending())),
        ("tok.x", ("", Pending())),
        ("tok.t12", ("", Pending())),  # a transfer number needs 3 digits
        ("a.b.c", ("", Pending())),
        (".", ("", Pending())),
        # The note is validated on its own: a bad token is dropped, a good note kept.
        ("bad token.h", ("", Pending(HANG_UP))),
        ("ü.h", ("", Pending(HANG_UP))),
    ],
)
def test_a_malformed_value_is_not_trusted(value: str, expected: tuple[str, Pending]) -> None:
    assert split_dynamic_id(value) == expected
