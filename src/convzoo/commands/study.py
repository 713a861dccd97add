"""``convzoo study``: the main job — which convolution should I use, on my data and my hardware?"""

from __future__ import annotations

import argparse
import json
import sys

from convzoo.commands._util import positive_int, table


def run_study_command(args: argparse.Namespace) -> int:
    from convzoo.study import StudyConfig, StudyInterrupted, run_study
    from convzoo.study.report import accuracy_text, machine_line, pareto_front

    ops = tuple(o.strip() for o in args.ops.split(",") if o.strip())
    config = StudyConfig(
        ops=ops,
        model=args.model,
        data=args.data,
        data_root=args.data_root,
        epochs=args.epochs,
        seed=args.seed,
        seeds=args.seeds,
        out=args.out,
        threads=args.threads,
        repeats=args.repeats,
        progress=not args.no_progress,
    )
    try:
        rows, paths = run_study(config)
    except StudyInterrupted as stop:
        done = f"; the {len(stop.rows)} finished ops are in {stop.paths['html']}" if stop.paths else ""
        print(
            f"interrupted while training {stop.op} (seed {stop.seed}): its checkpoint is in {stop.run_dir}{done}; "
            f"continue with convzoo study --ops {','.join(stop.remaining)} and the same settings",
            file=sys.stderr,
        )
        return 130
    front = pareto_front(rows)
    spread = "mean ± std" if config.seeds > 1 else "1 seed"
    print(
        table(
            ("op", f"test acc % ({spread})", "params", "MMACs", "deploy ms", "layout", "train-form ms", "status"),
            [
                (
                    r.op + (" *" if r.op in front else ""),
                    accuracy_text(r),
                    "" if r.params is None else f"{r.params:,}",
                    "" if r.macs is None else f"{r.macs / 1e6:.2f}",
                    "" if r.latency_ms is None else f"{r.latency_ms:.3f}",
                    r.layout or "",
                    "" if r.train_latency_ms is None else f"{r.train_latency_ms:.3f}",
                    r.status,
                )
                for r in rows
            ],
        )
    )
    settings = json.loads(paths["json"].read_text())["settings"]  # the machine and load the study recorded
    print(f"\n{machine_line(settings)}")
    if settings.get("load_warning"):
        print(settings["load_warning"])
    also = f"{paths['json'].name}, {paths['csv'].name}"
    print(f"* Pareto front (mean accuracy, deploy latency). Report: {paths['html']}  (also {also})")
    return 0 if any(r.status == "ok" for r in rows) else 2


def add_commands(sub: argparse._SubParsersAction) -> None:
    from convzoo.study.runner import DEFAULT_OPS, StudyConfig

    defaults = StudyConfig()
    p = sub.add_parser("study", help="train one backbone per operator on a dataset, measure each, report")
    p.add_argument("--ops", default=",".join(DEFAULT_OPS), help="comma-separated registered operators")
    p.add_argument(
        "--model",
        default=defaults.model,
        help="the backbone whose spatial convs each op replaces: a registered model that takes op= "
        "(default: %(default)s)",
    )
    p.add_argument("--data", default=defaults.data, help="a registered dataset (default: %(default)s)")
    p.add_argument("--data-root", default=None, help="folder of an on-disk dataset (cifar10, imagefolder, ...)")
    p.add_argument("--epochs", type=positive_int, default=defaults.epochs, help="epochs per run (default: %(default)s)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="the first seed (default: %(default)s)")
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=defaults.seeds,
        help="train each op this many times, with seeds SEED, SEED+1, ...; accuracy is reported as mean ± sample "
        "standard deviation and the Pareto front uses the mean (default: %(default)s)",
    )
    p.add_argument(
        "--threads", type=positive_int, default=None, help="intra-op threads (default: the idle cores, at most torch's)"
    )
    p.add_argument(
        "--repeats",
        type=positive_int,
        default=defaults.repeats,
        help="interleaved timed forward passes per op and form (default: %(default)s)",
    )
    p.add_argument("--out", default=defaults.out, help="folder for the report and the runs (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run_study_command)
