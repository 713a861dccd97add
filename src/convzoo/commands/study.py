"""``convzoo study``: the main job — which convolution should I use, on my data and my hardware?

``--task classify`` (the default) compares operators in one backbone (:mod:`convzoo.study.runner`). Any other task
``NAME`` is the module ``convzoo.study.task_NAME``, whose ``main(args) -> int`` receives the parsed namespace: the
common flags below, with ``None`` where the user gave none (``--model``, ``--models``, ``--data``, ``--ops``,
``--epochs``, ``--seeds``, ``--batch-size``, ``--lr``, ``--recipe``, ``--out``, ``--repeats``, ``--threads``, so a
task study applies its own defaults), ``args.models`` as typed (comma-separated) and ``args.option`` the list of
``KEY=VALUE`` texts (read them with :func:`convzoo.core.options.parse_assignments`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import pkgutil
import sys

from convzoo.commands._util import UsageError, assignments, positive_int, table

CLASSIFY = "classify"


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def study_tasks() -> list[str]:
    """The tasks that have a study: ``classify`` and every ``convzoo/study/task_<name>.py``."""
    import convzoo.study

    found = [m.name[len("task_") :] for m in pkgutil.iter_modules(convzoo.study.__path__) if m.name.startswith("task_")]
    return [CLASSIFY, *sorted(found)]


def run_study_command(args: argparse.Namespace) -> int:
    if args.task != CLASSIFY:
        name = f"convzoo.study.task_{args.task}"
        if not args.task.isidentifier() or importlib.util.find_spec(name) is None:
            print(
                f"convzoo study: error: no study for task {args.task!r}; tasks with a study: "
                f"{', '.join(study_tasks())}",
                file=sys.stderr,
            )
            return 2
        return importlib.import_module(name).main(args)
    return _classify(args)


def _classify(args: argparse.Namespace) -> int:
    from convzoo.study import StudyConfig, StudyInterrupted, run_study
    from convzoo.study.report import accuracy_text, machine_line, pareto_front

    if args.models is not None:
        raise UsageError(
            "--models is for task studies that compare models; the classify study compares --ops in one --model"
        )
    if args.option:
        raise UsageError("--option is for task studies; the classify study's backbone settings are --cfg KEY=VALUE")
    given = {
        "ops": None if args.ops is None else tuple(o.strip() for o in args.ops.split(",") if o.strip()),
        "model": args.model,
        "data": args.data,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "recipe": args.recipe,
        "seeds": args.seeds,
        "out": args.out,
        "repeats": args.repeats,
    }
    config = StudyConfig(
        **{k: v for k, v in given.items() if v is not None},
        data_root=args.data_root,
        cfg=assignments("--cfg", args.cfg),
        seed=args.seed,
        threads=args.threads,
        progress=not args.no_progress,
        resume=args.resume,
        parallel=args.parallel,
    )
    try:
        rows, paths = run_study(config)
    except StudyInterrupted as stop:
        done = f"; the {len(stop.rows)} finished ops are in {stop.paths['html']}" if stop.paths else ""
        print(
            f"interrupted while training {stop.op} (seed {stop.seed}): its checkpoint is in {stop.run_dir}{done}; "
            f"continue the remaining ops ({','.join(stop.remaining)}) with the same command and --resume",
            file=sys.stderr,
        )
        return 130
    if not paths:  # a rank other than 0 of a torchrun launch: rank 0 reports
        return 0
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
    timed_on = sorted({r.timed_on for r in rows if r.timed_on})
    if timed_on:
        print(f"latency timed on {'; '.join(timed_on)}")
    if settings.get("load_warning"):
        print(settings["load_warning"])
    also = f"{paths['json'].name}, {paths['csv'].name}"
    print(f"* Pareto front (mean accuracy, deploy latency). Report: {paths['html']}  (also {also})")
    return 0 if any(r.status == "ok" for r in rows) else 2


def add_commands(sub: argparse._SubParsersAction) -> None:
    from convzoo.study.recipes import RECIPES
    from convzoo.study.runner import DEFAULT_OPS, PARALLEL, StudyConfig

    defaults = StudyConfig()
    recipes = "; ".join(f"{name}: {recipe.summary}" for name, recipe in RECIPES.items())
    p = sub.add_parser(
        "study",
        help="train one backbone per operator on a dataset, measure each, report",
        description="Train one backbone per operator (once per seed), time each op's deploy form and report accuracy "
        "against latency. Resumable (--resume), and spread over ranks by torchrun: "
        "torchrun --nproc_per_node N -m convzoo study ...",
    )
    p.add_argument(
        "--task",
        default=CLASSIFY,
        help="what the study trains: classify (the default; operators in one backbone) or a task with a study "
        "module convzoo.study.task_NAME (e.g. sr, seg, audio, where installed)",
    )
    p.add_argument(
        "--ops",
        default=None,
        help=f"comma-separated registered operators, or 'all' for every registered op (one that cannot stand in the "
        f"backbone is listed in the report with the reason) (classify default: {','.join(DEFAULT_OPS)})",
    )
    p.add_argument(
        "--model",
        default=None,
        help="the backbone whose spatial convs each op replaces: a registered model that takes op= "
        f"(classify default: {defaults.model})",
    )
    p.add_argument(
        "--models", default=None, help="comma-separated registered models, for task studies that compare models"
    )
    p.add_argument(
        "--cfg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a field of the backbone's config, e.g. blocks=(1,1,1) (repeatable)",
    )
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a setting a task study reads (repeatable)",
    )
    p.add_argument(
        "--data",
        default=None,
        help=f"a registered dataset: digits, cifar10, cifar100, imagefolder, ... (classify default: {defaults.data})",
    )
    p.add_argument("--data-root", default=None, help="folder of an on-disk dataset (cifar10, imagefolder, ...)")
    p.add_argument(
        "--recipe",
        default=None,
        help=f"the training recipe every run shares; the classify study's: {recipes} (default: {defaults.recipe})",
    )
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs per run (default: the recipe's)")
    p.add_argument(
        "--batch-size", type=positive_int, default=None, help="training batch per process (default: the recipe's)"
    )
    p.add_argument("--lr", type=_positive_float, default=None, help="peak learning rate (default: the recipe's)")
    p.add_argument("--seed", type=int, default=defaults.seed, help="the first seed (default: %(default)s)")
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help="train each op this many times, with seeds SEED, SEED+1, ...; accuracy is reported as mean ± sample "
        f"standard deviation and the Pareto front uses the mean (classify default: {defaults.seeds})",
    )
    p.add_argument(
        "--threads", type=positive_int, default=None, help="intra-op threads (default: the idle cores, at most torch's)"
    )
    p.add_argument(
        "--repeats",
        type=positive_int,
        default=None,
        help=f"interleaved timed forward passes per op and form (default: {defaults.repeats})",
    )
    p.add_argument(
        "--out",
        default=None,
        help=f"the study folder: report, rows and runs (classify default: {defaults.out}); without --resume an "
        "earlier study's rows and runs there are removed",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the study in --out: finished runs are kept, an interrupted run continues from its last "
        "checkpoint; settings that differ from the folder's are refused",
    )
    p.add_argument(
        "--parallel",
        default=defaults.parallel,
        choices=PARALLEL,
        help="under torchrun: 'runs' gives each rank whole (op, seed) runs on its own device; 'data' trains each run "
        "on all ranks through DDP (default: %(default)s)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run_study_command)
