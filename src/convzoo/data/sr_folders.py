"""Super-resolution benchmark folders: DIV2K for training, Set5 / Set14 / BSD100 / Urban100 for testing.

Two layouts, as the field distributes them:

``div2k``: ``ROOT/DIV2K_train_HR/0001.png …`` and ``ROOT/DIV2K_valid_HR/0801.png …`` (train and test splits), each
with its LR images beside it when given: ``ROOT/DIV2K_train_LR_bicubic/X2/0001x2.png``.

``sr-benchmark`` (one test set: Set5, Set14, BSD100, Urban100, …): ``ROOT/HR/<name>.png`` with, when given,
``ROOT/LR_bicubic/X2/<name>x2.png``. These sets are for testing only; their train split is refused.

HR images are cropped to a multiple of the scale. Without an LR folder the LR image is the bicubic (antialiased)
downscale of the HR one, as ``sr-photos`` makes it; with one, every HR image must have its LR file, of exactly
``1/scale`` its size — a missing or mismatched file is an error naming it. Test splits are whole images (of varying
sizes: score them one at a time); the DIV2K train split is ``samples`` random ``patch``² crops, drawn once from
``seed``, read from disk as they are asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from convzoo.core.validate import check_choice, check_int
from convzoo.data.base import DatasetInfo, check_root, check_split
from convzoo.data.sr_photos import SCALES, downscale
from convzoo.registry import DATASETS

__all__ = ["SRImagePairs", "SRCropPairs", "load_div2k", "load_sr_benchmark", "pair_files"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
DIV2K_LAYOUT = (
    "ROOT/DIV2K_train_HR/*.png and ROOT/DIV2K_valid_HR/*.png, optionally ROOT/DIV2K_{train,valid}_LR_bicubic/X<s>/"
    "<name>x<s>.png"
)
BENCHMARK_LAYOUT = "ROOT/HR/<name>.png, optionally ROOT/LR_bicubic/X<s>/<name>x<s>.png (Set5, Set14, BSD100, Urban100)"


@dataclass(frozen=True)
class Pair:
    """One HR image file and its LR file (``None``: made by bicubic downscaling)."""

    hr: Path
    lr: Path | None


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def pair_files(name: str, hr_folder: Path, lr_folder: Path | None, scale: int, layout: str) -> list[Pair]:
    """The HR images of ``hr_folder``, each with its ``<stem>x<scale>`` file in ``lr_folder`` when that exists."""
    if not hr_folder.is_dir():
        raise FileNotFoundError(f"{name}: missing folder {str(hr_folder)!r}; expected layout: {layout}")
    hrs = _images(hr_folder)
    if not hrs:
        raise ValueError(f"{name}: {str(hr_folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)}); layout: {layout}")
    if lr_folder is None or not lr_folder.is_dir():
        return [Pair(hr, None) for hr in hrs]
    lrs = {p.stem: p for p in _images(lr_folder)}
    pairs = []
    for hr in hrs:
        lr = lrs.get(f"{hr.stem}x{scale}")
        if lr is None:
            raise FileNotFoundError(
                f"{name}: {str(hr)!r} has no LR image {hr.stem}x{scale}.* in {str(lr_folder)!r}; layout: {layout}"
            )
        pairs.append(Pair(hr, lr))
    return pairs


def read_pair(pair: Pair, scale: int, name: str) -> tuple[Tensor, Tensor]:
    """``(lr, hr)`` of one pair: ``(3, h, w)`` and ``(3, s·h, s·w)`` in [0, 1]."""
    hr = read_rgb(pair.hr, name)
    h, w = (hr.shape[-2] // scale) * scale, (hr.shape[-1] // scale) * scale
    if h == 0 or w == 0:
        raise ValueError(f"{name}: {str(pair.hr)!r} is {tuple(hr.shape[-2:])}, smaller than the scale {scale}")
    hr = hr[:, :h, :w]
    if pair.lr is None:
        return downscale(hr[None], scale)[0], hr
    lr = read_rgb(pair.lr, name)
    if tuple(lr.shape[-2:]) != (h // scale, w // scale):
        raise ValueError(
            f"{name}: {str(pair.lr)!r} is {lr.shape[-1]}×{lr.shape[-2]} but its HR image {pair.hr.name} "
            f"({w}×{h} after cropping to ×{scale}) needs {w // scale}×{h // scale}"
        )
    return lr, hr


def read_rgb(path: Path, name: str) -> Tensor:
    """An image file as ``(3, H, W)`` floats in [0, 1] (Pillow's decompression-bomb limit kept)."""
    import warnings

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except (Image.DecompressionBombWarning, Image.DecompressionBombError, UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{name}: cannot read {str(path)!r} as an image ({error})") from None
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


class SRImagePairs(Dataset):
    """Whole ``(lr, hr)`` images, read when asked for (sizes vary: batch them one at a time)."""

    def __init__(self, pairs: list[Pair], scale: int, info: DatasetInfo) -> None:
        self.pairs, self.scale, self.info = pairs, scale, info

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return read_pair(self.pairs[index], self.scale, self.info.name)


class SRCropPairs(Dataset):
    """``samples`` random ``patch``² HR crops (and their LR crops) of the images of ``pairs``, drawn once."""

    def __init__(self, pairs: list[Pair], scale: int, patch: int, samples: int, seed: int, info: DatasetInfo) -> None:
        self.pairs, self.scale, self.patch, self.info = pairs, scale, patch, info
        generator = torch.Generator().manual_seed(seed)
        self.picks = torch.randint(0, len(pairs), (samples,), generator=generator).tolist()
        self.offsets = torch.rand(samples, 2, generator=generator).tolist()  # where in each image, as fractions

    def __len__(self) -> int:
        return len(self.picks)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        lr, hr = read_pair(self.pairs[self.picks[index]], self.scale, self.info.name)
        size = self.patch // self.scale
        rows, cols = lr.shape[-2] - size, lr.shape[-1] - size
        if rows < 0 or cols < 0:
            raise ValueError(
                f"{self.info.name}: {self.pairs[self.picks[index]].hr.name} is smaller than the {self.patch}² patch"
            )
        top, left = round(self.offsets[index][0] * rows), round(self.offsets[index][1] * cols)
        s = self.scale
        return (
            lr[:, top : top + size, left : left + size],
            hr[:, top * s : (top + size) * s, left * s : (left + size) * s],
        )


def _info(name: str, split: str, scale: int, patch: int, root: Path) -> DatasetInfo:
    return DatasetInfo(
        name, split, 0, 3, (patch, patch), (), (0.0,) * 3, (1.0,) * 3, root=str(root), extra={"scale": scale}
    )


def _check(name: str, scale: int, patch: int) -> None:
    check_choice(scale, SCALES, "scale", name)
    if check_int(patch, "patch", name) % scale:
        raise ValueError(f"{name}: patch must be a positive multiple of the scale {scale}, got {patch!r}")


@DATASETS.register("div2k", kind="sr", dims=(2,))
def load_div2k(
    split: str = "train",
    root: str | Path | None = None,
    *,
    scale: int = 2,
    patch: int = 96,
    samples: int = 16_000,
    seed: int = 0,
) -> Dataset:
    """DIV2K (800 train / 100 valid 2K images): random HR/LR crops for training, whole valid images for testing."""
    name = "div2k"
    check_split(name, split)
    _check(name, scale, patch)
    folder = check_root(name, root, DIV2K_LAYOUT)
    part = "train" if split == "train" else "valid"
    pairs = pair_files(
        name, folder / f"DIV2K_{part}_HR", folder / f"DIV2K_{part}_LR_bicubic" / f"X{scale}", scale, DIV2K_LAYOUT
    )
    info = _info(name, split, scale, patch, folder)
    if split == "train":
        return SRCropPairs(pairs, scale, patch, check_int(samples, "samples", name), seed, info)
    return SRImagePairs(pairs, scale, info)


@DATASETS.register("sr-benchmark", kind="sr", dims=(2,))
def load_sr_benchmark(
    split: str = "test", root: str | Path | None = None, *, scale: int = 2, patch: int = 96
) -> Dataset:
    """A test set in the benchmark layout (Set5, Set14, BSD100, Urban100): whole HR images and their LR images."""
    name = "sr-benchmark"
    check_split(name, split)
    _check(name, scale, patch)
    folder = check_root(name, root, BENCHMARK_LAYOUT)
    if split == "train":
        raise ValueError(
            f"sr-benchmark: {str(folder)!r} is a test set (Set5, Set14, BSD100, Urban100); train on div2k or sr-photos "
            "and score it with convzoo eval CHECKPOINT --data sr-benchmark --data-root DIR"
        )
    pairs = pair_files(name, folder / "HR", folder / "LR_bicubic" / f"X{scale}", scale, BENCHMARK_LAYOUT)
    return SRImagePairs(pairs, scale, _info(name, split, scale, patch, folder))
