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
        if entry.kind == "classify":
            macs = "-" if args.no_macs else f"{meta_macs(name) / 1e9:.2f}"
            published, size = f"{entry.info.params / 1e6:.2f}M", _size(entry.info.input_size)
        else:  # sequence models have no fixed input size to count MACs at
            macs, published, size = "-", "-", "-"
        rows.append((name, entry.kind, f"{counted / 1e6:.2f}M", published, macs, size, ",".join(entry.papers)))
    print(table(("model", "task", "params", "published", "GMACs", "input", "papers"), rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="registered models: parameters, published counts, MACs")
    models.add_argument("pattern", nargs="?", default=None, help="a glob such as 'resnet*'")
    models.add_argument("--no-macs", action="store_true", help="skip counting MACs (faster)")
    models.set_defaults(run=run_models)
