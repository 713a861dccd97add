"""``convzoo ops``, ``convzoo layers`` and ``convzoo catalog``: what is registered and what it covers."""

from __future__ import annotations

import argparse

from convzoo.commands._util import UsageError, table
from convzoo.registry import OP_KINDS


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def run_ops(args: argparse.Namespace) -> int:
    from convzoo.registry import OPS

    rows = [
        (
            e.name,
            e.kind,
            ",".join(f"{d}d" for d in e.dims),
            ",".join(e.papers) or "-",
            "yes" if e.linear else "no",
            "yes" if e.dynamic else "no",
            e.summary if args.long else _shorten(e.summary, 70),
        )
        for e in OPS.entries()
        if args.kind is None or e.kind == args.kind
    ]
    print(table(("name", "kind", "dims", "papers", "linear", "dynamic", "summary"), rows))
    return 0


def run_layers(args: argparse.Namespace) -> int:
    from convzoo.registry import LAYERS

    rows = [(e.name, ",".join(f"{d}d" for d in e.dims), ",".join(e.papers) or "-", e.summary) for e in LAYERS.entries()]
    print(table(("name", "dims", "papers", "summary"), rows))
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    from convzoo.registry import MODELS, TASKS

    rows = []
    for entry in TASKS.entries():
        task = entry.obj
        models = sum(1 for m in MODELS.entries() if m.kind in task.model_kinds)
        options = ", ".join(f"{k}={v}" for k, v in task.options.items()) or "-"
        rows.append((entry.name, task.primary, task.default_data, str(models), options, entry.summary))
    print(table(("task", "metric", "default data", "models", "options (defaults)", "summary"), rows))
    return 0


def run_datasets(args: argparse.Namespace) -> int:
    from convzoo.registry import DATASETS

    print(table(("name", "kind", "summary"), [(e.name, e.kind, e.summary) for e in DATASETS.entries()]))
    return 0


def run_catalog(args: argparse.Namespace) -> int:
    from convzoo.catalog import SECTIONS
    from convzoo.registry import coverage

    rows = coverage()
    if args.section is not None:
        if args.section.upper() not in SECTIONS:
            raise UsageError(f"unknown section {args.section!r}; expected one of {', '.join(SECTIONS)}")
        rows = [(e, impl) for e, impl in rows if e.section == args.section.upper()]
    shown = [(e, impl) for e, impl in rows if not impl] if args.missing else rows
    lines = [(e.label, e.key, e.section, ", ".join(impl) if impl else "-", _shorten(e.title, 60)) for e, impl in shown]
    print(table(("seed", "key", "sec", "implemented by", "paper"), lines))
    keys = {e.key for e, _ in rows}
    done_keys = {e.key for e, impl in rows if impl}
    done = sum(1 for _, impl in rows if impl)
    print(f"\ncoverage: {done}/{len(rows)} seeds, {len(done_keys)}/{len(keys)} catalog keys implemented")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    ops = sub.add_parser("ops", help="list the registered operators")
    ops.add_argument("--kind", choices=OP_KINDS)
    ops.add_argument("--long", action="store_true", help="do not shorten the summaries")
    ops.set_defaults(run=run_ops)

    layers = sub.add_parser("layers", help="list the registered layers")
    layers.set_defaults(run=run_layers)

    tasks = sub.add_parser("tasks", help="list the trainer's tasks (convzoo train --task NAME)")
    tasks.set_defaults(run=run_tasks)
    datasets = sub.add_parser("datasets", help="list the registered data sets (convzoo train --data NAME)")
    datasets.set_defaults(run=run_datasets)
    catalog = sub.add_parser("catalog", help="every catalog system with what implements it")
    catalog.add_argument("--missing", action="store_true", help="list only what is not implemented yet")
    catalog.add_argument("--section", help="one catalog section, A to J")
    catalog.set_defaults(run=run_catalog)
