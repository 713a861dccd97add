"""A super-resolution checkpoint at work: ``convzoo upscale CHECKPOINT in.png out.png``.

Any image size: the whole image in one pass, or tile by tile (``tile`` LR pixels with ``overlap`` pixels of
context, :func:`convzoo.models.sr_tiling.tiled_upscale`), which bounds the memory to one tile's activations. Colour
PNG or JPEG in (grey, palette and alpha images are converted to RGB), PNG out, written atomically so an interrupted
run never leaves half an image.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from convzoo.core.files import atomic_write
from convzoo.core.validate import check_int
from convzoo.models.sr_tiling import tile_count, tiled_upscale
from convzoo.train.checkpoint import build_from_checkpoint

__all__ = ["UpscaleResult", "read_rgb", "write_png", "upscale_file"]

READS = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class UpscaleResult:
    """What :func:`upscale_file` did: the model, the factor, the sizes ``(H, W)``, the tiles run and the time."""

    model: str
    scale: int
    input_size: tuple[int, int]
    output_size: tuple[int, int]
    tiles: int
    seconds: float


def read_rgb(path: str | Path) -> Tensor:
    """A PNG or JPEG file as ``(3, H, W)`` floats in [0, 1]; anything else is refused naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"upscale: no image file {str(path)!r}")
    if path.suffix.lower() not in READS:
        raise ValueError(f"upscale: reads PNG or JPEG ({', '.join(READS)}), got {str(path)!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ValueError(f"upscale: refusing {str(path)!r}: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"upscale: cannot read {str(path)!r} as an image ({error})") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()  # (3, H, W)


def write_png(image: Tensor, path: str | Path) -> Path:
    """Write ``(3, H, W)`` floats in [0, 1] as an 8-bit RGB PNG, atomically."""
    from PIL import Image

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"upscale: writes PNG, so the output must end in .png, got {str(path)!r}")
    pixels = (image.detach().clamp(0, 1).mul(255).round().to(torch.uint8)).permute(1, 2, 0).cpu().numpy()
    return atomic_write(path, lambda tmp: Image.fromarray(pixels, "RGB").save(tmp, format="PNG"))


def upscale_file(
    checkpoint: str | Path,
    source: str | Path,
    target: str | Path,
    *,
    tile: int | None = None,
    overlap: int = 16,
    progress: bool = True,
    threads: int | None = None,
) -> UpscaleResult:
    """Upscale the image file ``source`` with the sr checkpoint ``checkpoint`` and write ``target`` (PNG).

    ``tile=None`` runs the whole image at once; otherwise tiles of ``tile``² input pixels with ``overlap`` pixels of
    context each (a progress bar over tiles when ``progress``).
    """
    if tile is not None:
        check_int(tile, "tile", "upscale")
    check_int(overlap, "overlap", "upscale", low=0)
    if Path(target).suffix.lower() != ".png":  # before the model is built and the image decoded
        raise ValueError(f"upscale: writes PNG, so the output must end in .png, got {str(target)!r}")
    model, saved = build_from_checkpoint(checkpoint)
    if saved.task != "sr":
        raise ValueError(f"upscale: {str(checkpoint)!r} is a {saved.task} checkpoint, not a super-resolution (sr) one")
    image = read_rgb(source)[None]  # (1, 3, H, W)
    height, width = image.shape[-2:]
    scale = saved.architecture["scale"]
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(check_int(threads, "threads", "upscale"))
    started = time.perf_counter()
    try:
        with torch.inference_mode():
            if tile is None:
                out, tiles = model(image), 1
            else:
                tiles = tile_count(height, width, tile)
                bar = _bar(tiles, progress, f"{saved.architecture['model']} ×{scale}")
                try:
                    out = tiled_upscale(model, image, tile=tile, overlap=overlap, on_tile=bar.update)
                finally:
                    bar.close()
    finally:
        torch.set_num_threads(previous)
    seconds = time.perf_counter() - started
    write_png(out[0], target)
    return UpscaleResult(saved.architecture["model"], scale, (height, width), tuple(out.shape[-2:]), tiles, seconds)


def _bar(total: int, enabled: bool, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="tile", disable=not enabled, dynamic_ncols=True)
