"""``convzoo explain``: attribution maps, the linear interpreter and layer statistics of a checkpoint as an HTML
page with PNGs (:func:`convzoo.interpret.explain.explain_checkpoint`), or two checkpoints compared by CKA
(:func:`convzoo.interpret.explain.compare_checkpoints`)."""

from __future__ import annotations

import argparse

from convzoo.commands._util import UsageError, positive_int


def run_explain(args: argparse.Namespace) -> int:
    from convzoo.interpret.explain import compare_checkpoints, explain_checkpoint

    try:
        return _run(args, compare_checkpoints, explain_checkpoint)
    except ImportError as error:  # an optional dependency (Captum) is missing
        raise UsageError(str(error)) from None


def _run(args: argparse.Namespace, compare_checkpoints, explain_checkpoint) -> int:
    if args.compare:
        if args.checkpoint or args.image:
            raise UsageError("--compare takes two checkpoints and no other positional argument")
        result = compare_checkpoints(*args.compare, args.method or "cka", args.out, count=args.count, size=args.size)
    else:
        if not args.checkpoint or not args.image:
            raise UsageError("give a checkpoint and an image (or --compare CK1 CK2)")
        result = explain_checkpoint(
            args.checkpoint,
            args.image,
            args.method or "saliency,occlusion,linear",
            args.out,
            size=args.size,
            target=args.target,
            window=args.window,
            stride=args.stride,
            layer=args.layer,
            progress=not args.quiet,
        )
    for method, seconds in result.seconds.items():
        print(f"{method:<22} {seconds:8.2f} s")
    print(f"wrote {result.page} and {len(result.written) - 1} PNGs")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    explain = sub.add_parser("explain", help="look inside a checkpoint: attribution maps, linear interpreter, CKA")
    explain.add_argument("checkpoint", nargs="?", help="a checkpoint folder")
    explain.add_argument("image", nargs="?", help="an image file")
    explain.add_argument("--compare", nargs=2, metavar=("CK1", "CK2"), help="compare two checkpoints instead")
    explain.add_argument(
        "--method", help="comma-separated methods (default saliency,occlusion,linear; cka with --compare)"
    )
    explain.add_argument("--out", default="explain", help="folder for index.html and the PNGs (default ./explain)")
    explain.add_argument("--target", type=int, default=None, help="class to explain (default: the predicted one)")
    explain.add_argument("--size", type=positive_int, default=None, help="input size where the checkpoint records none")
    explain.add_argument("--window", type=positive_int, default=16, help="occlusion square side (default 16)")
    explain.add_argument("--stride", type=positive_int, default=8, help="occlusion step (default 8)")
    explain.add_argument("--layer", default=None, help="layer for deconvnet / activation_max (default: every stage)")
    explain.add_argument("--count", type=positive_int, default=64, help="inputs for --compare (default 64)")
    explain.add_argument("--quiet", action="store_true", help="no progress bars")
    explain.set_defaults(run=run_explain)
