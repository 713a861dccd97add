"""``convzoo upscale``: :func:`convzoo.train.upscale.upscale_file` from the command line."""

from __future__ import annotations

import argparse

from convzoo.commands._util import positive_int


def run_upscale(args: argparse.Namespace) -> int:
    from convzoo.train.upscale import upscale_file

    result = upscale_file(
        args.checkpoint,
        args.input,
        args.output,
        tile=args.tile,
        overlap=args.overlap,
        progress=not args.no_progress,
        threads=args.threads,
    )
    (h, w), (oh, ow) = result.input_size, result.output_size
    how = f"{result.tiles} tiles" if args.tile else "whole image"
    print(f"{result.model} ×{result.scale}: {w}×{h} → {ow}×{oh} ({how}, {result.seconds:.2f} s); wrote {args.output}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("upscale", help="upscale an image with a super-resolution checkpoint (any size, tiled)")
    p.add_argument("checkpoint", help="a checkpoint folder of `convzoo train --task sr`")
    p.add_argument("input", help="a PNG or JPEG image")
    p.add_argument("output", help="the PNG to write")
    p.add_argument(
        "--tile", type=positive_int, default=None, help="upscale tiles of TILE² input pixels (bounds the memory)"
    )
    p.add_argument(
        "--overlap", type=int, default=16, help="input pixels of context around each tile (default: %(default)s)"
    )
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar over tiles")
    p.set_defaults(run=run_upscale)
