"""``convzoo profile TARGET``: per-layer cost of an op, a model or any module against this machine's roofline
(:func:`convzoo.profile.targets.resolve_target` builds the target, :func:`convzoo.profile.profile` measures it)."""

from __future__ import annotations

import argparse
import sys

from convzoo.commands._util import assignments, parse_shape, positive_int


def run_profile(args: argparse.Namespace) -> int:
    import torch

    from convzoo.profile.machine import peaks_path
    from convzoo.profile.profiler import profile
    from convzoo.profile.report import to_csv, to_json
    from convzoo.profile.targets import resolve_target

    module, shape = resolve_target(
        args.target,
        input_shape=args.input,
        channels=args.channels,
        kernel_size=args.kernel_size,
        stride=args.stride,
        options=assignments("--option", args.option),
        op=args.op,
    )
    threads = args.threads or torch.get_num_threads()
    if not peaks_path(threads).is_file():
        print(f"measuring this machine's peaks at {threads} threads once (a few seconds) ...", file=sys.stderr)
    result = profile(
        module,
        tuple(shape),
        threads=args.threads,
        repeats=args.repeats,
        warmup=args.warmup,
        name=args.target,
        layout=not args.no_layout,
    )
    if args.json:
        print(to_json(result), end="")
    elif args.csv:
        print(to_csv(result), end="")
    else:
        print(result.table())
    if args.out is not None:
        written = result.write(args.out)
        print(f"\nwrote {', '.join(p.name for p in written.values())} to {args.out} (open {written['html']})")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "profile",
        help="per-layer params, MACs, bytes, latency and roofline efficiency of an op, model or module",
        description="TARGET: a registered model (resnet18), op:NAME (op:shift), or module:factory (mypkg.nets:build).",
    )
    parser.add_argument("target", help="model name, op:NAME or module:factory")
    parser.add_argument("--input", type=parse_shape, default=None, help="input shape such as 1x3x224x224")
    parser.add_argument("--threads", type=positive_int, default=None, help="intra-op threads (default: torch's)")
    parser.add_argument("--repeats", type=positive_int, default=30, help="timed forward passes (default 30)")
    parser.add_argument("--warmup", type=positive_int, default=3, help="untimed forward passes first (default 3)")
    parser.add_argument(
        "--no-layout",
        action="store_true",
        help="skip timing a channels-last copy beside the NCHW model (4-d inputs; it doubles the timed passes) and "
        "the faster-layout column",
    )
    parser.add_argument("--out", default=None, help="write profile.json, profile.csv, plots and report.html here")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON instead of the table")
    output.add_argument("--csv", action="store_true", help="print CSV instead of the table")
    ops = parser.add_argument_group("op targets")
    ops.add_argument("--channels", type=positive_int, default=None, help="output channels (default: the input's)")
    ops.add_argument("--kernel-size", type=positive_int, default=3)
    ops.add_argument("--stride", type=positive_int, default=1)
    ops.add_argument("--option", action="append", metavar="KEY=VALUE", help="an op option, repeatable")
    models = parser.add_argument_group("model targets")
    models.add_argument("--op", default=None, help="build the model with this op as its spatial mixer")
    parser.set_defaults(run=run_profile)
