"""``convzoo bench SUITE``: registered benchmark suites, (A, B) pairs timed interleaved or rows against the roofline,
as markdown tables headed by the machine, the threads and why, and the load the run shared the machine with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from convzoo.commands._util import UsageError, positive_int, table


def _repeats(text: str) -> int:
    from convzoo.profile.bench import MIN_REPEATS

    value = positive_int(text)
    if value < MIN_REPEATS:
        raise argparse.ArgumentTypeError(f"expected at least {MIN_REPEATS} repeats, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer ≥ 0, got {text!r}")
    return value


def run_suites(args: argparse.Namespace) -> int:
    from convzoo.registry import SUITES

    print(table(("suite", "papers", "summary"), [(e.name, ",".join(e.papers), e.summary) for e in SUITES.entries()]))
    return 0


def run_bench(args: argparse.Namespace) -> int:
    from convzoo.profile.bench import run_suite, select_suites, suite_threads
    from convzoo.profile.machine import peaks_path
    from convzoo.profile.timing import choose_threads
    from convzoo.registry import SUITES

    if args.list:
        return run_suites(args)
    if args.suite is None:
        raise UsageError(f"name a suite ({', '.join(SUITES.names())} or all); `convzoo bench --list` describes them")
    names = select_suites(args.suite, only=args.only, quick=args.quick, batch=args.batch)  # before any measuring
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out must be a directory, got the file {args.out!r}")

    def progress(case: str) -> None:
        if sys.stderr.isatty():
            print(f"  {case} ...", file=sys.stderr)

    for name in names:  # one suite at a time, each printed as soon as it is measured
        threads, why = choose_threads(args.threads, suite_threads(name))
        print(f"bench {name}: {threads} threads ({why})", file=sys.stderr)
        if not peaks_path(threads, args.quick).is_file():
            print(f"measuring this machine's peaks at {threads} threads once (a few seconds) ...", file=sys.stderr)
        result = run_suite(
            name,
            quick=args.quick,
            threads=threads,
            threads_reason=why,
            repeats=args.repeats,
            warmup=args.warmup,
            batch=args.batch,
            progress=progress,
            only=args.only,
        )
        print(result.markdown())
        path = result.write_json(out / f"bench-{name}{'-quick' if args.quick else ''}.json")
        print(f"\nwrote {path}\n")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench", help="run a benchmark suite: (A, B) pairs timed interleaved, or rows against the roofline, as markdown"
    )
    bench.add_argument("suite", nargs="?", help="a registered suite (`--list`), or all")
    bench.add_argument("--list", action="store_true", help="list the suites")
    bench.add_argument("--quick", action="store_true", help="tiny sizes (seconds; what the tests run)")
    bench.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="intra-op threads (default: no more than the idle cores, cpus − rounded-up 1-minute load, nor than "
        "torch's default or a suite's own count)",
    )
    bench.add_argument("--repeats", type=_repeats, default=25, help="timed rounds per case (≥ 20; default 25)")
    bench.add_argument("--warmup", type=_non_negative, default=5, help="untimed rounds first (default 5)")
    bench.add_argument("--batch", type=positive_int, default=None, help="override the suite's batch size")
    bench.add_argument("--only", default=None, metavar="TEXT", help="run only the cases whose name contains TEXT")
    bench.add_argument("--out", default=".", help="directory for bench-SUITE.json (default: the current one)")
    bench.set_defaults(run=run_bench)

    suites = sub.add_parser("suites", help="list the benchmark suites of `convzoo bench`")
    suites.set_defaults(run=run_suites)
