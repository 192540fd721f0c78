"""The README's pasted examples work against `make run`, as its "Try it" sections say.

`scripts/run-all.sh` (what `make run` runs) starts the server and every gateway on their fixed
README ports — inside the test run's own network namespace, so they collide with nothing — with
an in-memory store, so that a `var/dialogue.db` of your own is neither read nor written. Every
```sh block that uses grpcurl or curl then runs as pasted.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from tests.docs.blocks import fenced_blocks

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
SERVICES = 5  # the server and four gateways, each announcing "… listening on …"
# Bounds a broken start-up or a hung command only.
_START_BOUND_S = 180.0
_COMMAND_BOUND_S = 120
_STOP_BOUND_S = 60


def _examples() -> list[str]:
    return [
        block.body
        for block in fenced_blocks(README.read_text("utf-8"))
        if block.language == "sh" and ("grpcurl " in block.body or "curl " in block.body)
    ]


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for line in stream:
            lines.put(line)
    lines.put(None)


@contextlib.contextmanager
def _make_run() -> Iterator[None]:
    env = {**os.environ, "DIALOGUE_STORE": "memory://"}
    stack = subprocess.Popen(
        ["bash", "scripts/run-all.sh"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert stack.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(stack.stdout, lines), daemon=True).start()
    try:
        listening = 0
        deadline = time.monotonic() + _START_BOUND_S
        while listening < SERVICES and (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                line = lines.get(timeout=remaining)
                assert line is not None, "make run stopped before everything was listening"
                listening += " listening on " in line
        assert listening == SERVICES, f"only {listening} of {SERVICES} listening"
        yield
    finally:
        # run-all.sh stops its children on SIGTERM; the group kill is for a hung one only.
        stack.send_signal(signal.SIGTERM)
        try:
            stack.wait(timeout=_STOP_BOUND_S)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait(timeout=_STOP_BOUND_S)
        stack.stdout.close()


def _run(example: str) -> str:
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=_COMMAND_BOUND_S,
        check=False,
    )
    assert ran.returncode == 0, f"{example}\nexited {ran.returncode}: {ran.stderr}"
    return ran.stdout


def test_the_readme_examples_work_as_pasted_with_make_run_going() -> None:
    examples = _examples()
    grpc = [example for example in examples if "grpcurl " in example]
    http = [example for example in examples if "grpcurl " not in example]
    assert len(grpc) == 1
    assert len(http) >= 3
    with _make_run():
        session = _run(grpc[0])
        # What the README says the first two calls answer.
        assert '"node_id": "main_menu"' in session
        assert '"node_id": "bill_phone"' in session
        assert '"matched_intent": "bill"' in session
        assert '"status": "SERVING"' in session
        for example in http:
            answers = _run(example).splitlines()
            # `; echo` puts each answer on its own line; each is the vendor's JSON.
            assert len(answers) == example.count("curl "), answers
            for answer in answers:
                assert isinstance(json.loads(answer), dict), answer
