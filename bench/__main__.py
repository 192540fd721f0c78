"""`python -m bench`: runs the figures and writes docs/benchmarks.md and docs/benchmarks.png."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench.config import FIGURES, BenchConfig
from bench.report import write
from bench.runner import run_bench
from gateways.vendors import VENDORS

_DEFAULTS = BenchConfig()


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure dialogue against same-run baselines; write docs/benchmarks.md and .png.",
    )
    parser.add_argument(
        "--figures",
        default=",".join(FIGURES),
        help=f"comma-separated figures to run (default: all of {','.join(FIGURES)})",
    )
    parser.add_argument(
        "--repeats", type=int, default=_DEFAULTS.repeats, help="runs per point (median)"
    )
    parser.add_argument(
        "--duration", type=float, default=_DEFAULTS.duration_s, help="seconds per load run"
    )
    parser.add_argument(
        "--vendors",
        help="figure 2: comma-separated vendors to measure (default: every vendor with a script)",
    )
    parser.add_argument(
        "--http-load",
        choices=["python", "wrk"],
        default=_DEFAULTS.http_load,
        help="figure 2's load generator (wrk: the Debian package must be installed)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile with py-spy")
    parser.add_argument("--out-dir", type=Path, default=_DEFAULTS.out_dir, help="where to write")
    parser.add_argument(
        "--work-dir", type=Path, help="scratch directory to keep (default: a temporary one)"
    )
    parser.add_argument(
        "--tiny", action="store_true", help="the smoke test's configuration (meaningless timings)"
    )
    args = parser.parse_args(argv)
    figures = tuple(f.strip() for f in args.figures.split(",") if f.strip())
    unknown = set(figures) - set(FIGURES)
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}; expected some of {', '.join(FIGURES)}")
    vendors = None
    if args.vendors:
        vendors = tuple(v.strip() for v in args.vendors.split(",") if v.strip())
        unknown = set(vendors) - set(VENDORS)
        if unknown:
            parser.error(
                f"unknown vendors {sorted(unknown)}; expected some of {', '.join(VENDORS)}"
            )
    config = BenchConfig(
        figures=figures,
        out_dir=args.out_dir,
        work_dir=args.work_dir,
        repeats=max(1, args.repeats),
        duration_s=args.duration,
        vendors=vendors,
        http_load=args.http_load,
        profile=args.profile,
    )
    return (
        replace(config.tiny(), figures=figures, out_dir=args.out_dir, work_dir=args.work_dir)
        if args.tiny
        else config
    )


def main(argv: Sequence[str] | None = None) -> None:
    config = parse_args(argv)
    result = run_bench(config)
    md_path, png_path = write(result, config.out_dir)
    print(f"wrote {md_path} and {png_path} in {result.seconds / 60:.1f} minutes")
    for figure in result.figures:
        for ratio in figure.ratios:
            if ratio.target is not None:
                verdict = "met" if ratio.met else "MISSED"
                print(
                    f"  [{figure.key}] {ratio.label}: {ratio.ratio:.2f}× (target {ratio.target}) {verdict}"
                )
    if result.errors:
        print(f"figures that failed: {', '.join(result.errors)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
