"""``convzoo models``: registered architectures with counted and published parameters and MACs
(:func:`convzoo.profile.model_costs.model_costs`), and which load ecosystem weights (``convzoo.interop``)."""

from __future__ import annotations

import argparse

from convzoo.commands._util import table


def _millions(count: int | None) -> str:
    return "-" if count is None else f"{count / 1e6:.2f}M"


def _weights(name: str) -> str:
    """The packages whose weights map onto ``name`` ("timm+torchvision"), "-" for none."""
    from convzoo.registry import WEIGHTS

    if name not in WEIGHTS:
        return "-"
    sources = dict.fromkeys(spec.split(":")[0] for spec in WEIGHTS.get(name).summary.split(", "))
    return "+".join(sources)


def run_models(args: argparse.Namespace) -> int:
    from convzoo.profile.model_costs import model_costs

    costs = model_costs(args.pattern, macs=not args.no_macs)
    if not costs:
        print(f"no model matches {args.pattern!r}")
        return 0
    rows = [
        (
            c.name,
            c.kind,
            _millions(c.params),
            _millions(c.published_params),
            "-" if c.macs is None else f"{c.macs / 1e9:.2f}",
            "-" if c.input_size is None else "x".join(str(s) for s in c.input_size),
            ",".join(c.papers),
            _weights(c.name),
        )
        for c in costs
    ]
    print(table(("model", "task", "params", "published", "GMACs", "input", "papers", "weights"), rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    models = sub.add_parser("models", help="registered models: parameters, published counts, MACs")
    models.add_argument("pattern", nargs="?", default=None, help="a glob such as 'resnet*'")
    models.add_argument("--no-macs", action="store_true", help="skip counting MACs (faster)")
    models.set_defaults(run=run_models)
