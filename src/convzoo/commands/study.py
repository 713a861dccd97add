"""``convzoo study``: the main job — which convolution should I use, on my data and my hardware?"""

from __future__ import annotations

import argparse

from convzoo.commands._util import positive_int, table


def run_study_command(args: argparse.Namespace) -> int:
    from convzoo.study import StudyConfig, run_study
    from convzoo.study.report import pareto_front

    ops = tuple(o.strip() for o in args.ops.split(",") if o.strip())
    config = StudyConfig(
        ops=ops,
        model=args.model,
        data=args.data,
        data_root=args.data_root,
        epochs=args.epochs,
        seed=args.seed,
        out=args.out,
        threads=args.threads,
        repeats=args.repeats,
        progress=not args.no_progress,
    )
    rows, paths = run_study(config)
    front = pareto_front(rows)
    print(
        table(
            ("op", "test acc", "params", "MMACs", "latency ms", "status"),
            [
                (
                    r.op + (" *" if r.op in front else ""),
                    "" if r.test_acc is None else f"{100 * r.test_acc:.2f}%",
                    "" if r.params is None else f"{r.params:,}",
                    "" if r.macs is None else f"{r.macs / 1e6:.2f}",
                    "" if r.latency_ms is None else f"{r.latency_ms:.3f}",
                    r.status,
                )
                for r in rows
            ],
        )
    )
    print(f"\n* Pareto front. Report: {paths['html']}  (also {paths['json'].name}, {paths['csv'].name})")
    return 0 if any(r.status == "ok" for r in rows) else 2


def add_commands(sub: argparse._SubParsersAction) -> None:
    from convzoo.study.runner import DEFAULT_OPS

    p = sub.add_parser("study", help="train one backbone per operator on a dataset, measure each, report")
    p.add_argument("--ops", default=",".join(DEFAULT_OPS), help="comma-separated registered operators")
    p.add_argument("--model", default="mixer_resnet20")
    p.add_argument("--data", default="digits")
    p.add_argument("--data-root", default=None)
    p.add_argument("--epochs", type=positive_int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=None, help="intra-op threads (default: torch's)")
    p.add_argument("--repeats", type=positive_int, default=30, help="timed forward passes per op")
    p.add_argument("--out", default="study")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_study_command)
