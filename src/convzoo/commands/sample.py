"""``convzoo sample``: class-conditional images from a ``diffusion`` checkpoint as one PNG grid (S37, S63).

``convzoo sample CHECKPOINT --n 64 --out grid.png`` draws ``n`` samples (classes 0, 1, 2, ... in turn, or
``--class K`` for one), DDIM by default with classifier-free guidance, shows a progress bar over the sampling
steps and writes the grid atomically (one row per class cycle). ``--judge`` names a digits classifier checkpoint
(``convzoo train --task classify --data digits``) and prints how many samples it labels as the class asked for
and the Fréchet distance of its features to the real test digits.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from convzoo.commands._util import positive_int


def grid_image(images01, columns: int):
    """``(N, C, H, W)`` images in [0, 1] (C = 1 or 3) as one PIL image, ``columns`` per row, 2-pixel gaps."""
    import numpy as np
    from PIL import Image

    count, channels, height, width = images01.shape
    rows = math.ceil(count / columns)
    gap = 2
    canvas = np.zeros((rows * (height + gap) + gap, columns * (width + gap) + gap, channels), dtype=np.uint8)
    pixels = (images01.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    for index in range(count):
        r, c = divmod(index, columns)
        top, left = gap + r * (height + gap), gap + c * (width + gap)
        canvas[top : top + height, left : left + width] = pixels[index]
    return Image.fromarray(canvas[:, :, 0] if channels == 1 else canvas, mode="L" if channels == 1 else "RGB")


def run_sample(args: argparse.Namespace) -> int:
    import torch

    from convzoo.core.files import atomic_write
    from convzoo.train.diffusion import GaussianDiffusion, digits_quality, load_sampler, sample

    if args.threads:
        torch.set_num_threads(args.threads)
    sampler = load_sampler(args.checkpoint, use_ema=not args.no_ema)
    if args.class_ is not None and not 0 <= args.class_ < sampler.classes:
        raise ValueError(f"sample: --class must be in [0, {sampler.classes}), got {args.class_}")
    one = args.class_ is not None
    labels = torch.full((args.n,), args.class_) if one else torch.arange(args.n) % sampler.classes
    progress = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        def progress(steps):
            return tqdm(steps, desc=f"sampling {args.n}", leave=False, dynamic_ncols=True)

    images = sample(
        sampler.model,
        GaussianDiffusion(sampler.timesteps),
        labels,
        sampler.shape,
        steps=args.steps,
        guidance=args.guidance,
        method=args.method,
        eta=args.eta,
        null_label=sampler.classes,
        generator=torch.Generator().manual_seed(args.seed),
        progress=progress,
    )
    images01 = (sampler.decode(images).clamp(-1, 1) + 1) / 2  # (n, C, H, W) at the data's size
    columns = args.columns or (sampler.classes if args.class_ is None else int(math.ceil(math.sqrt(args.n))))
    out = atomic_write(Path(args.out), lambda tmp: grid_image(images01, columns).save(tmp, format="PNG"))
    weights = "EMA" if sampler.ema else "raw"
    print(
        f"{args.n} samples ({args.method}, {args.steps} steps, guidance {args.guidance:g}, {weights} weights) → {out}"
    )
    if args.judge:
        quality = digits_quality(images01.cpu(), labels, args.judge)
        print(
            f"judge {args.judge}: {quality['class_match']:.1%} labelled as the class asked for; Fréchet distance "
            f"{quality['frechet']:.3f} to the real test digits in its {int(quality['feature_dim'])}-d penultimate "
            f"features (the judge's own test accuracy {quality['judge_test_acc']:.1%}; not ImageNet FID)"
        )
        if args.json:
            print(json.dumps(quality), file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="class-conditional samples of a diffusion checkpoint as a PNG grid")
    p.add_argument("checkpoint", help="a checkpoint of convzoo train --task diffusion")
    p.add_argument("--n", type=positive_int, default=64, help="number of samples (default: 64)")
    p.add_argument("--out", required=True, help="PNG file for the grid (written atomically)")
    p.add_argument("--steps", type=positive_int, default=50, help="sampling steps (default: 50)")
    p.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance scale (1: none)")
    p.add_argument("--method", choices=("ddim", "ddpm"), default="ddim", help="sampler (default: ddim)")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM noise scale (0: deterministic)")
    p.add_argument("--class", dest="class_", type=int, default=None, help="sample one class only")
    p.add_argument("--columns", type=positive_int, default=None, help="grid columns (default: the classes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-ema", action="store_true", help="use the raw weights even when the run kept an EMA")
    p.add_argument("--judge", default=None, help="a digits classifier checkpoint that scores the samples")
    p.add_argument("--json", action="store_true", help="with --judge: also the figures as JSON on stderr")
    p.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=run_sample)
