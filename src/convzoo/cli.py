"""The ``convzoo`` command: browse the registry and the catalog, compare operators.

Every failure caused by the user's input exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one readable line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


class UsageError(Exception):
    """A bad command line detected after parsing; reported as one line, exit status 2."""


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cmd_ops(args: argparse.Namespace) -> int:
    from convzoo.registry import OPS

    entries = [e for e in OPS.entries() if args.kind is None or e.kind == args.kind]
    rows = [
        (
            e.name,
            e.kind,
            ",".join(f"{d}d" for d in e.dims),
            ",".join(e.papers) or "-",
            "yes" if e.linear else "no",
            "yes" if e.dynamic else "no",
            e.summary if args.long else e.summary[:70] + ("…" if len(e.summary) > 70 else ""),
        )
        for e in entries
    ]
    print(_table(("name", "kind", "dims", "papers", "linear", "dynamic", "summary"), rows))
    return 0


def _cmd_layers(args: argparse.Namespace) -> int:
    from convzoo.registry import LAYERS

    rows = [(e.name, ",".join(f"{d}d" for d in e.dims), ",".join(e.papers) or "-", e.summary) for e in LAYERS.entries()]
    print(_table(("name", "dims", "papers", "summary"), rows))
    return 0


def _cmd_catalog(args: argparse.Namespace) -> int:
    from convzoo.catalog import SECTIONS, coverage

    rows = coverage()
    if args.section is not None:
        if args.section.upper() not in SECTIONS:
            raise UsageError(f"unknown section {args.section!r}; expected one of {', '.join(SECTIONS)}")
        rows = [(e, impl) for e, impl in rows if e.section == args.section.upper()]
    shown = [(e, impl) for e, impl in rows if not impl] if args.missing else rows
    table = [
        (e.label, e.key, e.section, ", ".join(impl) if impl else "-", e.title[:60] + ("…" if len(e.title) > 60 else ""))
        for e, impl in shown
    ]
    print(_table(("seed", "key", "sec", "implemented by", "paper"), table))
    done = sum(1 for _, impl in rows if impl)
    keys = {e.key for e, _ in rows}
    done_keys = {e.key for e, impl in rows if impl}
    print(f"\ncoverage: {done}/{len(rows)} seeds, {len(done_keys)}/{len(keys)} catalog keys implemented")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import torch

    from convzoo.profile.compare import compare_ops
    from convzoo.registry import OPS

    names = [n.strip() for n in args.ops.split(",") if n.strip()]
    for name in names:
        OPS.get(name)  # unknown names fail before any measurement
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
        f"input {shape}; {torch.get_num_threads()} threads, median of {args.repeats} interleaved runs"
    )
    rows = [
        (c.name, f"{c.params:,}", f"{c.macs / 1e6:,.2f}", f"{c.median_ms:.3f}", f"{c.spread_ms:.3f}", f"{c.ratio:.2f}")
        for c in costs
    ]
    print(_table(("op", "params", "MMACs", "median ms", "IQR ms", f"time / {names[0]}"), rows))
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from convzoo import __version__

    parser = _Parser(prog="convzoo", description="The convolution literature as one verified, measured catalog.")
    parser.add_argument("--version", action="version", version=f"convzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    ops = sub.add_parser("ops", help="list the registered operators")
    ops.add_argument("--kind", choices=("grid", "attention", "sequence", "graph", "equivariant", "set"))
    ops.add_argument("--long", action="store_true", help="do not shorten the summaries")
    ops.set_defaults(run=_cmd_ops)

    layers = sub.add_parser("layers", help="list the registered layers")
    layers.set_defaults(run=_cmd_layers)

    catalog = sub.add_parser("catalog", help="every catalog system with what implements it")
    catalog.add_argument("--missing", action="store_true", help="list only what is not implemented yet")
    catalog.add_argument("--section", help="one catalog section, A to J")
    catalog.set_defaults(run=_cmd_catalog)

    compare = sub.add_parser("compare", help="params, MACs and latency of operators side by side")
    compare.add_argument("--ops", default="conv,dwsep,shift,asym,cp,inception_dw,dilated_reparam")
    compare.add_argument("--channels", type=_positive, default=64)
    compare.add_argument("--size", type=_positive, default=56)
    compare.add_argument("--kernel-size", type=_positive, default=3)
    compare.add_argument("--stride", type=_positive, default=1)
    compare.add_argument("--dim", type=int, choices=(1, 2, 3), default=2)
    compare.add_argument("--batch", type=_positive, default=1)
    compare.add_argument("--repeats", type=_positive, default=30)
    compare.add_argument("--threads", type=_positive, default=None)
    compare.set_defaults(run=_cmd_compare)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ValueError, TypeError) as error:
        print(f"convzoo {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `convzoo catalog | head`: the reader left, which is not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
