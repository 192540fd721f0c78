"""Unit tests of finding values inside a sentence: which stretches are read, longest first, and
which give no value (estimates, fractions, a stretch read as two values)."""

from __future__ import annotations

import pytest

from server.engine.extraction import readings
from server.engine.matching import spoken_number


@pytest.mark.parametrize(
    ("said", "expected"),
    [
        ("我要两百五十个", [250]),
        ("两个三个", [2, 3]),
        ("一共一百", [100]),
        ("万一是五呢", [5]),
        ("twenty five, or thirty", [25, 30]),
        ("twenty five thirty", []),  # one stretch read as two values: unclear
        ("a hundred and five people", [105]),
        ("oh well, maybe a table", []),
        ("十五六个", []),
        ("three and a half", []),
        ("", []),
    ],
)
def test_readings_take_the_longest_number_of_each_stretch(said: str, expected: list[int]) -> None:
    assert readings(said, spoken_number) == expected


def test_readings_are_bounded_for_a_long_utterance() -> None:
    # Only the first 200 tokens are looked at, in stretches of at most 32.
    assert len(readings("一 " * 1000, spoken_number)) == 7


@pytest.mark.parametrize(
    "said",
    [
        # Regression (issue 17 QA): each of these was read as the number next to the word.
        "几百块",
        "十几个",
        "一千多块",
        "一百来块",
        "二十多个人",
        "五个以上",
        "一千以内",
        "不到十个",
        "超过二十",
        "第三个",
        "more than five",
        "over twenty people",
        "at least three",
        "twenty something",
        "ten or more",
        "1.5k",
    ],
)
def test_an_estimate_or_a_bound_is_no_value(said: str) -> None:
    assert readings(said, spoken_number) == []


@pytest.mark.parametrize(
    ("said", "expected"),
    [("大概一千", [1000]), ("一千左右", [1000]), ("about twenty", [20]), ("二十个人吧", [20])],
)
def test_an_approximate_value_is_still_the_value(said: str, expected: list[int]) -> None:
    assert readings(said, spoken_number) == expected
