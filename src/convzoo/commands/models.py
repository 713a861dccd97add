"""``convzoo models``: registered architectures with counted and published parameters and MACs."""

from __future__ import annotations

import argparse

from convzoo.commands._util import table


def _size(size: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in size)


def run_models(args: argparse.Namespace) -> int:
    from convzoo.models.base import list_models, meta_macs, meta_param_count
    from convzoo.registry import MODELS

    names = list_models(args.pattern)
    if not names:
        print(f"no model matches {args.pattern!r}")
        return 0
    rows = []
    for name in names:
        entry = MODELS.get(name)
        counted = meta_param_count(name)
        macs = "-" if args.no_macs else f"{meta_macs(name) / 1e9:.2f}"
        rows.append(
            (
                name,
                f"{counted / 1e6:.2f}M",
                f"{entry.extra['params'] / 1e6:.2f}M",
                macs,
                _size(entry.extra["input_size"]),
                ",".join(entry.papers),
            )
        )
    print(table(("model", "params", "published", "GMACs", "input", "papers"), rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="registered models: parameters, published counts, MACs")
    models.add_argument("pattern", nargs="?", default=None, help="a glob such as 'resnet*'")
    models.add_argument("--no-macs", action="store_true", help="skip counting MACs (faster)")
    models.set_defaults(run=run_models)
