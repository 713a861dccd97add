"""``convzoo compare``: operators side by side at one shape on this machine."""

from __future__ import annotations

import argparse

from convzoo.commands._util import positive_int, table


def run_compare(args: argparse.Namespace) -> int:
    from convzoo.profile.compare import compare_ops

    names = [n.strip() for n in args.ops.split(",") if n.strip()]
    costs = compare_ops(
        names,
        args.channels,
        args.size,
        kernel_size=args.kernel_size,
        stride=args.stride,
        dim=args.dim,
        batch=args.batch,
        repeats=args.repeats,
        threads=args.threads,
    )
    shape = f"{args.batch}x{args.channels}x" + "x".join([str(args.size)] * args.dim)
    print(
        f"operators at {args.channels}->{args.channels} channels, k={args.kernel_size}, stride={args.stride}, "
        f"input {shape}; {costs[0].threads} threads, median of {args.repeats} interleaved runs"
    )
    rows = [
        (
            c.name,
            c.kernel_size,
            f"{c.params:,}",
            f"{c.macs / 1e6:,.2f}",
            f"{c.median_ms:.3f}",
            f"{c.spread_ms:.3f}",
            f"{c.ratio:.2f}",
        )
        for c in costs
    ]
    print(table(("op", "k", "params", "MMACs", "median ms", "IQR ms", f"time / {names[0]}"), rows))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser("compare", help="params, MACs and latency of operators side by side")
    compare.add_argument("--ops", default="conv,dwsep,shift,asym,cp,inception_dw,dilated_reparam")
    compare.add_argument("--channels", type=positive_int, default=64)
    compare.add_argument("--size", type=positive_int, default=56)
    compare.add_argument("--kernel-size", type=positive_int, default=3)
    compare.add_argument("--stride", type=positive_int, default=1)
    compare.add_argument("--dim", type=int, choices=(1, 2, 3), default=2)
    compare.add_argument("--batch", type=positive_int, default=1)
    compare.add_argument("--repeats", type=positive_int, default=30)
    compare.add_argument("--threads", type=positive_int, default=None)
    compare.set_defaults(run=run_compare)
