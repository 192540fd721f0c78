"""Setting: declared once, read one way, errors that name the variable or flag."""

from __future__ import annotations

import argparse

import pytest

from common.settings import BOOLEAN, PAIRS, Setting, choice, whole_number

MUTE = Setting("X_MUTE_MS", whole_number(0, "milliseconds"), 1000, "wait", flag="--mute-ms")
RECORD = Setting("X_RECORD", BOOLEAN, True, "record calls")


def test_unset_and_blank_mean_the_default() -> None:
    assert MUTE.read({}) == 1000
    assert MUTE.read({"X_MUTE_MS": "  "}) == 1000


def test_a_bad_value_names_its_own_variable() -> None:
    with pytest.raises(ValueError, match=r"X_MUTE_MS=.ten.*whole number of milliseconds"):
        MUTE.read({"X_MUTE_MS": "ten"})
    with pytest.raises(ValueError, match="X_MUTE_MS='-1'"):
        MUTE.read({"X_MUTE_MS": "-1"})


@pytest.mark.parametrize(
    ("raw", "value"), [("on", True), ("YES", True), ("0", False), ("off", False)]
)
def test_booleans_read_the_same_everywhere(raw: str, value: bool) -> None:
    assert RECORD.read({"X_RECORD": raw}) is value


def test_a_boolean_that_is_neither_is_refused() -> None:
    with pytest.raises(ValueError, match="X_RECORD='maybe'"):
        RECORD.read({"X_RECORD": "maybe"})


def test_choices_and_pairs() -> None:
    mode = Setting("X_MODE", choice("transfer", "hangup"), "transfer", "fallback")
    assert mode.read({"X_MODE": "hangup"}) == "hangup"
    with pytest.raises(ValueError, match="one of transfer, hangup"):
        mode.read({"X_MODE": "bye"})
    numbers = Setting("X_NUMBERS", PAIRS, {}, "numbers")
    assert numbers.read({"X_NUMBERS": "sales=100, care=200"}) == {"sales": "100", "care": "200"}
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        numbers.read({"X_NUMBERS": "sales"})


def test_a_flag_wins_and_its_help_says_where_the_value_comes_from() -> None:
    parser = argparse.ArgumentParser()
    MUTE.add_to(parser, {"X_MUTE_MS": "250"})
    assert parser.parse_args([]).mute_ms == 250
    assert parser.parse_args(["--mute-ms", "5"]).mute_ms == 5
    assert "(env X_MUTE_MS, default 1000)" in parser.format_help().replace("\n", " ").replace(
        "  ", " "
    )


def test_a_bad_environment_value_is_reported_before_parsing() -> None:
    with pytest.raises(ValueError, match="X_MUTE_MS"):
        MUTE.add_to(argparse.ArgumentParser(), {"X_MUTE_MS": "x"})
