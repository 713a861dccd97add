"""``convzoo subnets CHECKPOINT``: the subnets of a once-for-all supernet trained by the ``deps`` task (S113),
scored without retraining.

``convzoo subnets out/checkpoint --macs 2e6 --count 5`` extracts the largest and smallest subnets and ``--count``
random ones (each of at most ``--macs`` multiply-accumulates per image when given; ``--seed`` fixes the draw),
recalibrates each one's BN statistics on training images (``--calibrate``, default the run's option) and prints a
table of MACs and test accuracy on the data the supernet was trained on.
"""

from __future__ import annotations

import argparse

from convzoo.commands._util import table


def _count(text: str) -> int:
    """``"2e6"`` or ``"2000000"`` → 2000000; anything else, or a negative count, is refused naming the text."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a MACs count like 2e6, got {text!r}") from None
    if not value >= 0 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number of MACs ≥ 0, got {text!r}")
    return int(value)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int ≥ 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an int ≥ 0, got {text!r}")
    return value


def run_subnets(args: argparse.Namespace) -> int:
    from convzoo.train.tasks.deps import score_checkpoint_subnets

    rows, data = score_checkpoint_subnets(
        args.checkpoint, budget=args.macs, count=args.count, seed=args.seed, calibrate=args.calibrate
    )
    lines = [
        (
            name,
            f"{score.mmacs:.3f}",
            f"{score.acc:.4f}",
            " ".join(map(str, score.config.kernel)),
            " ".join(map(str, score.config.expand)),
            " ".join(map(str, score.config.depth)),
        )
        for name, score in rows
    ]
    print(f"subnets of {args.checkpoint} on the {data} test split (no retraining):")
    print(table(("subnet", "MMACs", "accuracy", "kernels", "expand ratios", "depths"), lines))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("subnets", help="score subnets of a deps supernet checkpoint (by MACs budget), no retraining")
    p.add_argument("checkpoint")
    p.add_argument("--macs", type=_count, default=None, help="keep subnets of at most this many MACs per image")
    p.add_argument("--count", type=_non_negative, default=5, help="random subnets to draw (default: %(default)s)")
    p.add_argument("--seed", type=_non_negative, default=0)
    p.add_argument("--calibrate", type=_non_negative, default=None, help="training images for BN recalibration")
    p.set_defaults(run=run_subnets)
