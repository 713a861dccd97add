"""Class-per-folder images: ROOT/train/<class>/* and ROOT/test/<class>/*, or ROOT/<class>/* split by seed."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from convzoo.data.base import DatasetInfo, TensorImageDataset, check_root, standardize
from convzoo.registry import DATASETS

__all__ = ["load_imagefolder"]

LAYOUT = "ROOT/train/<class>/<image> and ROOT/test/<class>/<image>, or ROOT/<class>/<image> (split 80/20 by seed)"
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _scan(folder: Path) -> dict[str, list[Path]]:
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    return {c.name: sorted(f for f in c.rglob("*") if f.suffix.lower() in EXTENSIONS) for c in classes}


def read_image(path: Path, size: int, channels: int) -> torch.Tensor:
    """One image file as ``(channels, size, size)`` floats in [0, 1] (resized with bicubic filtering).

    Pillow's decompression-bomb limit stays on, and is strict here: an image above ``Image.MAX_IMAGE_PIXELS``
    (a small file that would decode to gigabytes) is refused before it is decoded, as are empty and
    unreadable files.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image = image.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BICUBIC)
                array = np.asarray(image, dtype=np.float32) / 255.0
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ValueError(f"imagefolder: refusing {str(path)!r}: {error}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"imagefolder: cannot read {str(path)!r} as an image ({error})") from None
    tensor = torch.from_numpy(array)
    return tensor.unsqueeze(0) if channels == 1 else tensor.permute(2, 0, 1)  # (C, H, W)


@DATASETS.register("imagefolder", kind="classify", dims=(2,))
def load_imagefolder(
    split: str = "train", root: str | Path | None = None, *, size: int = 32, channels: int = 3, seed: int = 0
) -> TensorImageDataset:
    """Your own images, one folder per class, resized to size×size; class names are the folder names."""
    folder = check_root("imagefolder", root, LAYOUT)
    if (folder / "train").is_dir() and (folder / "test").is_dir():
        files = {s: _scan(folder / s) for s in ("train", "test")}
        if sorted(files["train"]) != sorted(files["test"]):
            raise ValueError(
                f"imagefolder: train classes {sorted(files['train'])} differ from test classes {sorted(files['test'])}"
            )
    else:
        everything = _scan(folder)
        rng = np.random.default_rng(seed)
        files = {"train": {}, "test": {}}
        for name, paths in everything.items():
            order = rng.permutation(len(paths))
            cut = max(1, int(round(0.8 * len(paths)))) if len(paths) > 1 else len(paths)
            files["train"][name] = [paths[i] for i in order[:cut]]
            files["test"][name] = [paths[i] for i in order[cut:]]
    class_names = tuple(sorted(files["train"]))
    if len(class_names) < 2 or any(not files["train"][c] for c in class_names):
        raise ValueError(f"imagefolder: {str(folder)!r} needs at least 2 class folders with images; expected {LAYOUT}")
    tensors = {}
    for s in ("train", "test"):
        pairs = [(read_image(p, size, channels), i) for i, c in enumerate(class_names) for p in files[s][c]]
        if not pairs:
            raise ValueError(f"imagefolder: no {s} images under {str(folder)!r}; expected {LAYOUT}")
        tensors[s] = (torch.stack([x for x, _ in pairs]), torch.tensor([y for _, y in pairs]))
    mean, std, (train, test) = standardize(tensors["train"][0], tensors["test"][0])
    images, labels = (train, tensors["train"][1]) if split == "train" else (test, tensors["test"][1])
    info = DatasetInfo(
        "imagefolder", split, len(class_names), channels, (size, size), class_names, mean, std, str(folder)
    )
    return TensorImageDataset(images, labels, info)
