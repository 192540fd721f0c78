"""`make demo` runs the real server and gateway through a whole call and exits 0."""

from __future__ import annotations

import json
import subprocess
import sys

from scripts.demo import REPO_ROOT, SCRIPT, describe_answer, spoken

# Only bounds how long a broken demo can hang the run; the demo bounds its own steps too.
_DEMO_BOUND_S = 300


def test_make_demo_plays_the_whole_call_and_exits_0() -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "scripts.demo"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=_DEMO_BOUND_S,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr
    out = demo.stdout
    for number, turn in enumerate(SCRIPT, start=1):
        assert f"{number}. caller {turn.did}\n   bot    [" in out
    # The bot's last answer is a hang-up; then the call record is acknowledged.
    assert "then hangs up\nthe platform pushes the call record" in out
    assert out.rstrip().endswith("the demo went through")


def test_an_answer_reads_as_its_prompts_in_order_then_what_the_bot_waits_for() -> None:
    answer = {
        "action": "dtmf",
        "action_code": "$tts1$,welcome.wav,$tts2$",
        "action_code_param": json.dumps({"tts1": "one", "tts2": "two"}),
        "dtmf_max_numbers": 11,
        "dtmf_end_character": "#",
        "dtmf_nonin_overtime": 5,
    }
    assert spoken(answer) == ["one", "[audio welcome.wav]", "two"]
    assert describe_answer(answer) == [
        "[dtmf] says: one",
        "says: [audio welcome.wav]",
        "says: two",
        "then waits for up to 11 key(s) ended by #, 5 s for the first",
    ]


def test_an_answer_without_prompts_still_says_what_the_bot_does() -> None:
    assert describe_answer({"action": "donothing"}) == ["[donothing] then: donothing"]
