"""`python -m bench.ab`: one lever measured before/after, in one run, through gRPC.

Each variant is a revision of this repository (a commit, a branch, `.` for the work tree as it
is, or a directory holding a copy of it), exported with `git archive` into a scratch directory and served from there by
`python -m server` — the packages of the working directory come first on `sys.path` — with
the same store kind and, optionally, the echo servicers beside them. The load generator runs
the carrier script against every target in turn, in a rotating order, for `--rounds` rounds;
the medians of throughput, p50, p99 and the server's CPU per request are printed as a markdown
table, with each variant's ratios to the first one. This is how bench/levers.md's
before/after tables are made: the machine is shared, so only figures of one run are compared.

    python -m bench.ab --store sqlite --concurrency 64 before=HEAD~1 after=.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.context import cpu_per_request_us
from bench.driver import LoadGenerator
from bench.fig_decide import ECHOES
from bench.loadgen import RunSpec
from bench.procs import REPO_ROOT, Child, echo_argv, launch, running, server_argv
from bench.results import RunResult, Summary, fmt, median
from tests.support.redis_server import start_redis

STORES = ("sqlite", "redis", "memory")


@dataclass(frozen=True, slots=True)
class Variant:
    """A revision to serve, and extra server arguments."""

    name: str
    revision: str
    arguments: tuple[str, ...] = ()

    @staticmethod
    def parse(text: str) -> Variant:
        """NAME=REVISION[,ARGUMENT...] — e.g. `two=.,--workers,2`."""
        name, separator, rest = text.partition("=")
        if not separator or not name or not rest:
            raise argparse.ArgumentTypeError(f"expected NAME=REVISION[,ARG...], got {text!r}")
        revision, *arguments = rest.split(",")
        return Variant(name, revision, tuple(arguments))


def export(revision: str, scratch: Path) -> Path:
    """A directory holding the revision's files (the repository itself for `.`; a directory
    is taken as it is, e.g. a copy with an experiment applied)."""
    if revision == ".":
        return REPO_ROOT
    if Path(revision).is_dir():
        return Path(revision).resolve()
    target = scratch / revision.replace("/", "_").replace("~", "-").replace("^", "-")
    if not target.exists():
        target.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", revision], cwd=REPO_ROOT, check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "x"], cwd=target, input=archive, check=True)
    return target


def _store_url(kind: str, scratch: Path, name: str, redis_url: str) -> str:
    if kind == "sqlite":
        return f"sqlite://{scratch / f'{name}.db'}"
    if kind == "redis":
        return redis_url
    return "memory://"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("variants", nargs="+", type=Variant.parse, help="NAME=REVISION[,ARG...]")
    parser.add_argument("--store", choices=STORES, default="sqlite")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--channels", type=int, default=1, help="client connections")
    parser.add_argument("--echo", action="store_true", help="also run both echo servicers")
    args = parser.parse_args(argv)
    names = [variant.name for variant in args.variants]
    if len(set(names)) != len(names):
        parser.error("variant names must differ")

    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dialogue-ab-")))
        redis_url = ""
        if args.store == "redis":
            (scratch / "redis").mkdir()
            redis_url = stack.enter_context(start_redis(scratch / "redis")).url
        logs = scratch / "logs"
        targets: dict[str, Child] = {}
        for variant in args.variants:
            store = _store_url(args.store, scratch, variant.name, redis_url)
            targets[variant.name] = launch(
                f"ab-{variant.name}",
                [*server_argv(store), *variant.arguments],
                logs,
                cwd=export(variant.revision, scratch / "trees"),
            )
        if args.echo:
            for name, sync in ECHOES.items():
                targets[name] = launch(f"ab-{name}", echo_argv(sync=sync), logs)
        stack.enter_context(running(*targets.values()))
        load = stack.enter_context(LoadGenerator(logs))
        results: dict[tuple[str, int], list[RunResult]] = defaultdict(list)
        cpu: dict[tuple[str, int], list[float]] = defaultdict(list)
        order = list(targets)
        runs = 0
        for round_ in range(args.rounds):
            for concurrency in args.concurrency:
                shift = round_ % len(order)
                for name in order[shift:] + order[:shift]:
                    child = targets[name]
                    before = child.cpu_seconds()
                    runs += 1
                    result = load.run(
                        RunSpec(
                            kind="grpc",
                            target=child.address,
                            concurrency=concurrency,
                            duration_s=args.duration,
                            warmup_s=args.warmup,
                            max_requests=200_000,
                            prefix=f"ab{runs}",
                            channels=args.channels,
                        )
                    )
                    child.check_alive()
                    results[name, concurrency].append(result)
                    cpu[name, concurrency].append(cpu_per_request_us(child, before, result))

    print(
        f"store {args.store}, medians of {args.rounds} rounds of {args.duration:g} s, "
        f"{args.channels} client connection(s)\n"
    )
    print(
        "| target | concurrent calls | throughput (/s) | p50 (ms) | p99 (ms) "
        "| server CPU per request (µs) | CPU × first | errors |"
    )
    print("|---|---|---|---|---|---|---|---|")
    first = names[0]
    for concurrency in args.concurrency:
        for name in order:
            s = Summary.of(results[name, concurrency])
            mine = median(cpu[name, concurrency])
            base = median(cpu[first, concurrency])
            print(
                f"| {name} | {concurrency} | {fmt(s.throughput, 0)} | {fmt(s.p50_ms, 2)} "
                f"| {fmt(s.p99_ms, 2)} | {fmt(mine, 0)} | {mine / base:.2f}× | {s.errors} |"
            )


if __name__ == "__main__":
    main()
