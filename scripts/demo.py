"""`make demo`: one whole scripted call, played through the real server and a real gateway.

Starts `dialogue-server` (demo flows, in-memory store) and `dialogue-gateway aliyun-ivr`, both on
free 127.0.0.1 ports, then sends the callbacks Aliyun intelligent voice interaction would send
for a caller of the carrier line 10086 who checks a bill and hangs up, and prints each turn:
what the caller did and what the bot answered. Then it stops both and exits 0 — or 1, with the
processes' stderr, when anything went otherwise.

The core (the script, how an answer reads, the callback each turn sends) is pure; the process
and HTTP handling is at the bottom.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CALL_ID = "demo-call-1"
CALLER = "13800138000"
LINE = "10086"
# The call's clock: the platform stamps every callback (milliseconds since the epoch).
STARTED_AT_MS = 1_763_719_200_000

# Bounds only, never expectations: a cold interpreter importing grpc on a busy 2-core machine
# can take many seconds to start.
STARTUP_BOUND_S = 90.0
REQUEST_BOUND_S = 30.0
SHUTDOWN_BOUND_S = 30.0
_STDERR_TAIL_CHARS = 4000
_LISTENING = re.compile(r"^dialogue-(?:server|gateway [\w-]+) listening on (\S+:\d+)$")
_PROMPT_TOKEN = re.compile(r"^\$(\w+)\$$")


@dataclass(frozen=True, slots=True)
class Turn:
    """One callback of the call: what the caller did, as the platform reports it."""

    did: str
    content_type: str
    content: Mapping[str, str]


# Dials in, asks for the bill by voice, keys in the number, then presses 2 ("that's all").
SCRIPT: tuple[Turn, ...] = (
    Turn(
        f"dials {LINE} from {CALLER}",
        "callin",
        {"caller": CALLER, "callee": LINE, "orgcallee": LINE},
    ),
    Turn("says “我想查话费” (I'd like to check my bill)", "normal", {"words": "我想查话费"}),
    Turn(f"keys in {CALLER}#", "dtmf", {"dtmf_digits": f"{CALLER}#"}),
    Turn("presses 2 (end the call)", "dtmf", {"dtmf_digits": "2"}),
)


def callback_query(turn: Turn, number: int, dynamic_id: str) -> dict[str, str]:
    """The callback's query parameters; the platform echoes the last answer's dynamic_id."""
    content = dict(turn.content)
    if dynamic_id:
        content["dynamic_id"] = dynamic_id
    return {
        "call_id": CALL_ID,
        "timestamp": str(STARTED_AT_MS + 5000 * number),
        "content_type": turn.content_type,
        "content": json.dumps(content, ensure_ascii=False),
    }


def call_record(turns: int) -> list[dict[str, str]]:
    """The VoiceReport the platform pushes after the bot hung up."""
    ended = STARTED_AT_MS + 5000 * turns
    return [
        {
            "call_id": CALL_ID,
            "caller": CALLER,
            "callee": LINE,
            "start_time": str(STARTED_AT_MS),
            "end_time": str(ended),
            "duration": str((ended - STARTED_AT_MS) // 1000),
            "hangup_direction": "机器",
            "status_code": "200000",
            "status_msg": "正常",
        }
    ]


def spoken(data: Mapping[str, Any]) -> list[str]:
    """The prompts of an answer, in order: `$name$` tokens read from action_code_param."""
    params = json.loads(data.get("action_code_param") or "{}")
    said = []
    for token in str(data.get("action_code", "")).split(","):
        if not token:
            continue
        named = _PROMPT_TOKEN.match(token)
        said.append(str(params.get(named.group(1), token)) if named else f"[audio {token}]")
    return said


def describe_answer(data: Mapping[str, Any]) -> list[str]:
    """What the bot did, line by line, from the gateway's answer to the platform."""
    action = str(data.get("action", "?"))
    lines = [f"says: {text}" for text in spoken(data)]
    if action == "dtmf":
        end = data.get("dtmf_end_character") or ""
        lines.append(
            f"then waits for up to {data.get('dtmf_max_numbers')} key(s)"
            + (f" ended by {end}" if end else "")
            + f", {data.get('dtmf_nonin_overtime')} s for the first"
        )
    elif action in ("answer", "playback"):
        lines.append(f"then listens (speech; {int(data.get('mute_time', 0)) // 1000} s of silence)")
    elif action == "hangup":
        lines.append("then hangs up")
    else:
        lines.append(f"then: {action}")
    return [f"[{action}] {lines[0]}", *lines[1:]]


def transcript_lines(number: int, turn: Turn, answer: Mapping[str, Any]) -> list[str]:
    """One turn as printed: the caller's line, then the bot's."""
    bot = describe_answer(answer)
    return [
        f"{number}. caller {turn.did}",
        f"   bot    {bot[0]}",
        *(f"          {line}" for line in bot[1:]),
    ]


class DemoError(Exception):
    """The demo could not run to its end; the message says where it stopped."""


# -- processes and HTTP ------------------------------------------------------------------------


def _stderr_tail(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")[-_STDERR_TAIL_CHARS:]


def _pump(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    # Drains stdout for the process's whole life: a full pipe would block it.
    with contextlib.suppress(OSError, ValueError):
        for raw in stream:
            lines.put(raw.decode("utf-8", errors="replace").strip())
    lines.put(None)


def _announced_address(name: str, lines: queue.Queue[str | None]) -> str:
    deadline = time.monotonic() + STARTUP_BOUND_S
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            raise DemoError(f"{name} exited before it was listening")
        if listening := _LISTENING.match(line):
            return listening.group(1)
    raise DemoError(f"{name} was not listening within {STARTUP_BOUND_S:.0f} s")


@contextlib.contextmanager
def running(name: str, argv: Sequence[str], env: Mapping[str, str], logs: Path) -> Iterator[str]:
    """Runs `argv` until the block ends, yielding the address it announced; then SIGTERM, after
    which it must exit 0."""
    stderr_path = logs / f"{name.replace(' ', '-')}.stderr"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    code = None
    try:
        yield _announced_address(name, lines)
        code = _stop(process)
    except DemoError as failure:
        failure.add_note(f"{name} stderr:\n{_stderr_tail(stderr_path)}")
        raise
    finally:
        _stop(process)
    if code != 0:
        raise DemoError(f"{name} exited {code} after SIGTERM\n{_stderr_tail(stderr_path)}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=SHUTDOWN_BOUND_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SHUTDOWN_BOUND_S)
            return -signal.SIGKILL
    return process.returncode


def _http_json(request: urllib.request.Request) -> Any:
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_BOUND_S) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as refused:
        body = refused.read().decode("utf-8", errors="replace")
        raise DemoError(f"{request.full_url} answered {refused.code}: {body}") from None
    except OSError as exc:
        raise DemoError(f"{request.full_url}: {exc}") from None


def play_call(gateway: str) -> list[str]:
    """Sends every scripted callback and the call record; returns the transcript."""
    base = f"http://{gateway}/aliyun/ivr"
    printed: list[str] = []
    dynamic_id = ""
    answer: dict[str, Any] = {}
    for number, turn in enumerate(SCRIPT, start=1):
        query = urllib.parse.urlencode(callback_query(turn, number, dynamic_id))
        envelope = _http_json(urllib.request.Request(f"{base}/callback?{query}"))
        answer = envelope.get("data") or {}
        dynamic_id = str(answer.get("dynamic_id", ""))
        lines = transcript_lines(number, turn, answer)
        print(*lines, sep="\n", flush=True)
        printed += lines
    if answer.get("action") != "hangup":
        raise DemoError(f"the bot did not hang up at the end of the script: {answer}")
    report = json.dumps(call_record(len(SCRIPT)), ensure_ascii=False).encode()
    ack = _http_json(
        urllib.request.Request(
            f"{base}/report", data=report, headers={"Content-Type": "application/json"}
        )
    )
    if ack.get("code") != 0:
        raise DemoError(f"the call record was not acknowledged: {ack}")
    last = f"the platform pushes the call record; the gateway acknowledges it ({ack.get('msg')})"
    print(last, flush=True)
    return [*printed, last]


def main() -> int:
    """Runs the demo; 0 when the whole call went through."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # The demo's own settings win over the caller's environment: it must not reach elsewhere.
    env.pop("ALIYUN_CALLBACK_TOKEN", None)
    print(f"dialogue demo: a call to the carrier line {LINE}, as Aliyun intelligent voice would")
    print("(make run starts every gateway for your own experiments: see README.md)", flush=True)
    try:
        with tempfile.TemporaryDirectory(prefix="dialogue-demo-") as tmp:
            server_argv = [
                str(bin_dir / "dialogue-server"),
                *("--listen", "127.0.0.1:0", "--store", "memory://"),
            ]
            with running("dialogue-server", server_argv, env, Path(tmp)) as server:
                print(f"started dialogue-server on {server} (demo flows, memory store)")
                gateway_argv = [
                    str(bin_dir / "dialogue-gateway"),
                    *("aliyun-ivr", "--listen", "127.0.0.1:0", "--server", server),
                ]
                with running("dialogue-gateway", gateway_argv, env, Path(tmp)) as gateway:
                    print(f"started dialogue-gateway aliyun-ivr on {gateway}\n", flush=True)
                    play_call(gateway)
            print("\nstopped both; the demo went through")
    except DemoError as failure:
        print(f"\ndemo failed: {failure}", file=sys.stderr)
        for note in getattr(failure, "__notes__", []):
            print(note, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
