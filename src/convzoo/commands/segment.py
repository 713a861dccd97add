"""``convzoo segment CHECKPOINT in.png out.png``: the label map of an image from a ``seg`` checkpoint, written as
a PNG in the PASCAL VOC colour palette (the input's size: a fully convolutional model takes any size)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch

from convzoo.commands._util import UsageError

__all__ = ["segment_image", "add_commands"]


def _read_rgb(path: Path, channels: int) -> torch.Tensor:
    """``(channels, H, W)`` floats in [0, 1] at the file's own size; decompression bombs are refused."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise FileNotFoundError(f"segment: no image file {str(path)!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ValueError(f"segment: {str(path)!r} is too large to decode safely ({error})") from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"segment: {str(path)!r} is not a readable image ({error})") from None
    tensor = torch.from_numpy(array)
    return tensor[None] if tensor.dim() == 2 else tensor.permute(2, 0, 1)  # (C, H, W)


def segment_image(checkpoint: str | Path, image: str | Path) -> torch.Tensor:
    """The ``(H, W)`` int64 label map of ``image`` by the ``seg`` checkpoint, standardised with the training
    data's mean and std recorded in it."""
    from convzoo.train.checkpoint import build_from_checkpoint

    model, saved = build_from_checkpoint(checkpoint)
    if saved.task != "seg":
        raise ValueError(f"segment: {str(checkpoint)!r} is a {saved.task} checkpoint, not a seg one")
    data = saved.meta.get("data", {})
    channels = saved.architecture["in_chans"]
    mean = torch.tensor(data.get("mean", [0.0] * channels)).view(-1, 1, 1)  # (C, 1, 1)
    std = torch.tensor(data.get("std", [1.0] * channels)).view(-1, 1, 1)
    x = (_read_rgb(Path(image), channels) - mean) / std  # (C, H, W)
    with torch.no_grad():
        return model(x[None])[0].argmax(0)  # (H, W)


def run_segment(args: argparse.Namespace) -> int:
    from PIL import Image

    from convzoo.core.files import atomic_write
    from convzoo.data.dense import colour_mask

    out = Path(args.output)
    if out.suffix.lower() != ".png":
        raise UsageError(f"segment: the output must be a .png file, got {str(out)!r}")
    labels = segment_image(args.checkpoint, args.image)
    picture = Image.fromarray(colour_mask(labels).numpy())
    atomic_write(out, lambda path: picture.save(path, format="PNG"))
    present = ", ".join(str(c) for c in labels.unique().tolist())
    print(f"{args.image}: {labels.shape[0]}×{labels.shape[1]} label map (classes {present}) → {out}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="label map of an image with a seg checkpoint, as a coloured PNG")
    p.add_argument("checkpoint", help="a checkpoint folder of convzoo train --task seg")
    p.add_argument("image", help="the input image (any size)")
    p.add_argument("output", help="the coloured label map to write (.png, VOC palette)")
    p.set_defaults(run=run_segment)
