"""Profiles with py-spy: the DecideNextAction path (SQLite, highest concurrency) and the
aliyun-ivr gateway chain, sampled from outside the processes while the load generator runs.

py-spy writes collapsed stacks ("thread (TID);frame;…;frame COUNT"); `summarise` turns them
into the top functions by own samples (self) and by samples under them (inclusive), and the
share of each thread.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.context import Context, describe_run
from bench.driver import LoadGenerator
from bench.loadgen import RunSpec
from bench.procs import REPO_ROOT, Child, gateway_argv, launch, running, server_argv
from bench.results import Figure, Table
from bench.vendors import script

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_THREAD = re.compile(r"^thread \((?P<tid>[^)]*)\)|^process \d+")
_RATE_HZ = 250
_PROFILED_VENDOR = "aliyun-ivr"


@dataclass(frozen=True, slots=True)
class Profile:
    """A summary of collapsed stacks: (what, share of samples) lists, biggest first.

    Attributes:
        samples: Samples summarised.
        own: Functions by own samples (the leaf frame: where the interpreter was).
        project: Samples charged to functions of this repository (server/, gateways/): those
            where it is the innermost of our code and specific libraries (AREAS) on the stack,
            i.e. its own work and the generic library code it called (json, dataclasses, ...).
        areas: Samples by area (AREAS), charged the same way.
        threads: Samples by thread.
    """

    samples: int
    own: list[tuple[str, float]]
    project: list[tuple[str, float]]
    areas: list[tuple[str, float]]
    threads: list[tuple[str, float]]


# (area, file prefixes after _short), first match wins; project files are matched first.
# A leaf Handle._run runs a C callback: in these processes, mostly gRPC's Cython aio layer.
CYTHON_CALLBACKS = "C callbacks run by the event loop (mostly gRPC's Cython aio layer)"
# (area, file prefixes after _short). A sample belongs to the innermost frame on its stack that
# is our code or a specific library; generic frames (the rest) are charged to their caller.
PROJECT_AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("engine: flow interpreter, state encode/decode", ("server/engine/",)),
    ("store", ("server/store/",)),
    ("request validation", ("server/validation.py",)),
    ("service: parse, fingerprint, locks, serialise", ("server/",)),
    ("vendor mapping", ("gateways/aliyun", "gateways/huawei", "gateways/telnyx")),
    ("gateway shared layer (app, decider, fallback, masking)", ("gateways/",)),
)
LIBRARY_AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging", ("logging/",)),
    ("gRPC (Python side)", ("grpc/", "grpc_")),
    ("protobuf", ("google/protobuf/",)),
    (
        "HTTP stack (uvicorn, h11, starlette, fastapi, anyio)",
        ("uvicorn/", "h11/", "starlette/", "fastapi/", "anyio/", "sniffio/", "pydantic"),
    ),
    ("sqlite3 module", ("sqlite3/",)),
)
GENERIC_AREAS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "asyncio and executor machinery",
        ("asyncio/", "concurrent/", "threading.py", "selectors.py", "queue.py", "_weakrefset.py"),
    ),
)
AREAS = PROJECT_AREAS + LIBRARY_AREAS + GENERIC_AREAS
_PROJECT = ("server/", "gateways/")
_SCAFFOLDING = ("server/__main__.py", "gateways/__main__.py", "server/app.py")


def _match(file: str, areas: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    return next((area for area, prefixes in areas if file.startswith(prefixes)), None)


def _owner(parts: list[tuple[str, str]]) -> tuple[str, str | None]:
    """(area, project function or None) that a stack's sample is charged to."""
    if parts[-1] == ("Handle._run", "asyncio/events.py"):
        return CYTHON_CALLBACKS, None
    for function, file in reversed(parts):
        if file.startswith(_PROJECT) and not file.startswith(_SCAFFOLDING):
            return _match(file, PROJECT_AREAS) or "other", f"{function} ({file})"
        area = _match(file, LIBRARY_AREAS)
        if area is not None:
            return area, None
    for _, file in reversed(parts):
        area = _match(file, GENERIC_AREAS)
        if area is not None:
            return area, None
    return "other", None


def py_spy() -> str | None:
    """The py-spy executable: beside this interpreter (the venv), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _short(file: str) -> str:
    for marker in ("site-packages/", "lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1].lstrip("/").removeprefix(".11/")
    with contextlib.suppress(ValueError):
        return str(Path(file).relative_to(REPO_ROOT))
    return file


def _parts(frame: str) -> tuple[str, str]:
    """(function, short file) of a collapsed-stack frame."""
    match = _FRAME.match(frame)
    if match is None:
        return frame, ""
    return match.group("function"), _short(match.group("file"))


def frame_name(frame: str) -> str:
    """`function (file)` of a collapsed-stack frame, the line number dropped."""
    function, file = _parts(frame)
    return f"{function} ({file})" if file else function


def summarise(collapsed: str, top: int = 15) -> Profile:
    """Own, our-code-function, area and thread shares of collapsed stacks."""
    own: Counter[str] = Counter()
    project: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = "?"
        if frames and _THREAD.match(frames[0]):
            thread = frames.pop(0)
        if not frames:
            continue
        total += count
        threads[thread] += count
        parts = [_parts(frame) for frame in frames]
        own[frame_name(frames[-1])] += count
        area, function = _owner(parts)
        areas[area] += count
        if function is not None:
            project[function] += count
    if total == 0:
        return Profile(0, [], [], [], [])

    def shares(counter: Counter[str], limit: int) -> list[tuple[str, float]]:
        return [(name, count / total) for name, count in counter.most_common(limit)]

    return Profile(
        total,
        shares(own, top),
        shares(project, top),
        shares(areas, len(AREAS) + 2),
        shares(threads, 8),
    )


def _record(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    executable = py_spy()
    assert executable is not None
    return subprocess.Popen(
        [
            executable,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(_RATE_HZ),
            "--format",
            "raw",
            "--threads",
            "--gil",
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _profile_during(
    ctx: Context, load: LoadGenerator, spec: RunSpec, children: list[Child], name: str
) -> dict[str, Profile]:
    """Runs spec while py-spy samples each child after the warm-up; summaries by child name."""
    outputs = {
        child.name: ctx.scratch("profiles") / f"{name}-{child.name}.txt" for child in children
    }
    # py-spy starts sampling at once; the warm-up of the spec covers its start-up.
    recorders = [_record(child.pid, spec.duration_s, outputs[child.name]) for child in children]
    result = load.run(spec)
    ctx.say(describe_run(f"profile {name}", result))
    profiles: dict[str, Profile] = {}
    for child, recorder in zip(children, recorders, strict=True):
        _, stderr = recorder.communicate(timeout=spec.duration_s + 60)
        path = outputs[child.name]
        if recorder.returncode != 0 or not path.exists():
            raise RuntimeError(
                f"py-spy failed on {child.name}: {stderr.decode(errors='replace')[-800:]}"
            )
        profiles[child.name] = summarise(path.read_text(encoding="utf-8", errors="replace"))
    return profiles


def _tables(title: str, profile: Profile) -> list[Table]:
    views = [
        ("by area", "area", profile.areas, False),
        (
            "by function of our code (its own work and the generic stdlib code it calls)",
            "function (file)",
            profile.project,
            True,
        ),
        ("by own samples (the leaf frame)", "function (file)", profile.own, True),
        ("by thread (holding the GIL)", "thread", profile.threads, False),
    ]
    return [
        Table(
            f"{title} — {kind}, {profile.samples:,} samples",
            [column, "% of samples"],
            [[f"`{name}`" if code else name, f"{share:.1%}"] for name, share in rows],
        )
        for kind, column, rows, code in views
    ]


def run(ctx: Context) -> Figure:
    config = ctx.config
    figure = Figure("P", "Profiles (py-spy): where the time goes")
    if py_spy() is None:
        figure.notes.append("py-spy is not installed: `.venv/bin/pip install py-spy`.")
        return figure
    figure.notes.append(
        f"py-spy at {_RATE_HZ} Hz with --gil: only the thread holding the GIL is sampled, so "
        "percentages are shares of the process's Python CPU work (time in C with the GIL "
        "released, e.g. inside sqlite3_step, is not counted). gRPC's aio layer is Cython: its "
        "work shows as `Handle._run (asyncio/events.py)` own samples."
    )
    scratch = ctx.scratch("profile")
    concurrency = max(config.concurrencies)
    with contextlib.ExitStack() as stack:
        server = launch(
            "prof-server", server_argv(f"sqlite://{scratch / 'dialogue.db'}"), ctx.log_dir
        )
        stack.enter_context(running(server))
        gateway = launch(
            "prof-gateway", gateway_argv(_PROFILED_VENDOR, server.address), ctx.log_dir
        )
        stack.enter_context(running(gateway))
        load = stack.enter_context(LoadGenerator(ctx.log_dir))
        decide = _profile_during(
            ctx,
            load,
            RunSpec(
                kind="grpc",
                target=server.address,
                concurrency=concurrency,
                duration_s=config.profile_s,
                warmup_s=config.warmup_s,
                max_requests=config.max_requests,
                prefix=ctx.prefix("p"),
            ),
            [server],
            "decide",
        )
        figure.tables += _tables(
            f"DecideNextAction, SQLite, {concurrency} concurrent — server", decide[server.name]
        )
        chain = _profile_during(
            ctx,
            load,
            RunSpec(
                kind="http",
                target=gateway.address,
                concurrency=config.gateway_concurrency,
                duration_s=config.profile_s,
                warmup_s=config.warmup_s,
                max_requests=config.max_requests,
                prefix=ctx.prefix("p"),
                http_targets=script(_PROFILED_VENDOR) or [],
            ),
            [gateway, server],
            "chain",
        )
        figure.tables += _tables(
            f"{_PROFILED_VENDOR} chain, {config.gateway_concurrency} connections — gateway",
            chain[gateway.name],
        )
        figure.tables += _tables(f"{_PROFILED_VENDOR} chain — server behind it", chain[server.name])
    return figure
