"""Stereo pairs with disparity: random-dot stereograms with exact disparity (``random-dots``, generated, no
download) and a loader of a stereo folder layout (``stereo-folder``).

A random-dot stereogram is built surface by surface, farthest first: a fronto-parallel background at a random
integer disparity and 1–3 rectangles and discs nearer (larger integer disparities). The left image is random dots
(each pixel and channel uniform in [0, 1]); the right image starts as fresh random dots and each surface's left
pixels are copied to ``right[y, x − d]``, nearer surfaces over farther ones. So for every left pixel whose match
is not hidden by a nearer surface (or out of the frame), ``right[y, x − d] == left[y, x]`` exactly, and the
disparity map is exact everywhere (occluded pixels keep their surface's disparity, as KITTI's ground truth).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch

from convzoo.core.validate import check_int
from convzoo.data.base import DatasetInfo, check_root, check_split
from convzoo.data.dense import StereoDataset
from convzoo.registry import DATASETS

__all__ = ["random_dot_stereogram", "load_random_dots", "load_stereo_folder", "STEREO_LAYOUT"]

SEEDS = {"train": 4242, "test": 5353}
LENGTHS = {"train": 512, "test": 128}
STEREO_LAYOUT = (
    "ROOT/{train,test}/left/NAME.png, ROOT/{train,test}/right/NAME.png and ROOT/{train,test}/disparity/NAME.png "
    "(16-bit, disparity × 256, 0 = unknown: KITTI's encoding) or NAME.npy (float32 pixels, NaN = unknown); every "
    "NAME in all three folders, all images of a split the same size"
)


def random_dot_stereogram(
    rng: np.random.Generator, height: int, width: int, max_disparity: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One stereogram: ``left``, ``right`` ``(3, H, W)`` float32 and the left view's ``disparity`` ``(H, W)``
    float32 integers in ``[1, max_disparity)``."""
    y, x = np.mgrid[0:height, 0:width]
    background = int(rng.integers(1, max(2, max_disparity // 4)))
    surfaces = [(background, np.ones((height, width), dtype=bool))]
    for _ in range(rng.integers(1, 4)):
        d = int(rng.integers(background + 1, max_disparity))
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
        if rng.random() < 0.5:
            mask = (np.abs(y + 0.5 - cy) <= ry) & (np.abs(x + 0.5 - cx) <= rx)
        else:
            mask = ((y + 0.5 - cy) / ry) ** 2 + ((x + 0.5 - cx) / rx) ** 2 <= 1
        surfaces.append((d, mask))
    surfaces.sort(key=lambda s: s[0])  # farthest (smallest disparity) first
    disparity = np.zeros((height, width), np.float32)
    for d, mask in surfaces:
        disparity[mask] = d
    left = rng.uniform(0, 1, (3, height, width)).astype(np.float32)
    right = rng.uniform(0, 1, (3, height, width)).astype(np.float32)
    for d in sorted({s[0] for s in surfaces}):
        rows, cols = np.nonzero(disparity == d)  # this depth's visible left pixels
        keep = cols - d >= 0
        rows, cols = rows[keep], cols[keep]
        right[:, rows, cols - d] = left[:, rows, cols]
    return left, right, disparity


@cache
def _random_dots(split: str, length: int, height: int, width: int, max_disparity: int) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(SEEDS[split])
    pairs = [random_dot_stereogram(rng, height, width, max_disparity) for _ in range(length)]
    return tuple(torch.from_numpy(np.stack(part)) for part in zip(*pairs, strict=True))


@DATASETS.register("random-dots", kind="stereo", dims=(2,))
def load_random_dots(
    split: str = "train",
    root: str | Path | None = None,
    *,
    height: int = 48,
    width: int = 64,
    max_disparity: int = 16,
    length: int | None = None,
) -> StereoDataset:
    """Random-dot stereograms (512 train, 128 test) with exact integer disparities below ``max_disparity``."""
    if root is not None:
        raise ValueError(f"random-dots: is generated and takes no data folder, got {str(root)!r}")
    check_split("random-dots", split)
    check_int(height, "height", "random-dots", low=8)
    check_int(width, "width", "random-dots", low=8)
    check_int(max_disparity, "max_disparity", "random-dots", low=4, high=width - 1)
    length = LENGTHS[split] if length is None else check_int(length, "length", "random-dots")
    left, right, disparity = (t.clone() for t in _random_dots(split, length, height, width, max_disparity))
    info = DatasetInfo(
        "random-dots",
        split,
        0,
        3,
        (height, width),
        (),
        (0.5, 0.5, 0.5),
        (1 / 12**0.5,) * 3,
        extra={"max_disparity": max_disparity},
    )
    mean, std = torch.tensor(info.mean).view(1, 3, 1, 1), torch.tensor(info.std).view(1, 3, 1, 1)
    return StereoDataset((left - mean) / std, (right - mean) / std, disparity, info)


def _read_disparity(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False).astype(np.float32)
        if array.ndim != 2:
            raise ValueError(f"stereo-folder: {str(path)!r} holds a {array.ndim}-d array, not an (H, W) disparity")
        return array
    from PIL import Image

    with Image.open(path) as image:
        raw = np.asarray(image)
    if raw.ndim != 2 or raw.dtype not in (np.uint16, np.int32):
        raise ValueError(
            f"stereo-folder: {str(path)!r} is not a 16-bit one-channel PNG (KITTI's disparity × 256), "
            f"got {raw.dtype} of shape {raw.shape}"
        )
    disparity = raw.astype(np.float32) / 256.0
    disparity[raw == 0] = np.nan  # unknown
    return disparity


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0  # (3, H, W)


@DATASETS.register("stereo-folder", kind="stereo", dims=(2,))
def load_stereo_folder(
    split: str = "train", root: str | Path | None = None, *, max_disparity: int = 192
) -> StereoDataset:
    """Stereo pairs from a folder (see :data:`STEREO_LAYOUT`), standardised with ImageNet's mean and std."""
    check_split("stereo-folder", split)
    base = check_root("stereo-folder", root, STEREO_LAYOUT) / split
    folders = {part: base / part for part in ("left", "right", "disparity")}
    for folder in folders.values():
        if not folder.is_dir():
            raise FileNotFoundError(
                f"stereo-folder: missing the folder {str(folder)!r}; expected layout: {STEREO_LAYOUT}"
            )
    images = {
        p: {f.stem: f for f in folders[p].iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg")}
        for p in ("left", "right")
    }
    disparities = {f.stem: f for f in folders["disparity"].iterdir() if f.suffix.lower() in (".png", ".npy")}
    names = set(images["left"]) | set(images["right"]) | set(disparities)
    for part, found in (("left", images["left"]), ("right", images["right"]), ("disparity", disparities)):
        missing = sorted(names - set(found))
        if missing:
            shown = ", ".join(missing[:5]) + (f", … ({len(missing)} in all)" if len(missing) > 5 else "")
            raise ValueError(f"stereo-folder: {str(folders[part])!r} lacks the files of {shown} (mismatched files)")
    if not names:
        raise FileNotFoundError(f"stereo-folder: no images in {str(base)!r}; expected layout: {STEREO_LAYOUT}")
    lefts, rights, disps = [], [], []
    for name in sorted(names):
        left, right, disparity = (
            _read_rgb(images["left"][name]),
            _read_rgb(images["right"][name]),
            _read_disparity(disparities[name]),
        )
        if not left.shape == right.shape or left.shape[1:] != disparity.shape:
            raise ValueError(
                f"stereo-folder: {name!r} has left {left.shape[1:]}, right {right.shape[1:]} and disparity "
                f"{disparity.shape}: they must be the same size"
            )
        if lefts and left.shape != lefts[0].shape:
            raise ValueError(
                f"stereo-folder: {name!r} is {left.shape[1:]} but {sorted(names)[0]!r} is {lefts[0].shape[1:]}; "
                "every pair of a split must be the same size"
            )
        lefts.append(left), rights.append(right), disps.append(disparity)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    height, width = lefts[0].shape[1:]
    info = DatasetInfo(
        "stereo-folder", split, 0, 3, (height, width), (), mean, std, str(root), extra={"max_disparity": max_disparity}
    )
    left_t, right_t = torch.from_numpy(np.stack(lefts)), torch.from_numpy(np.stack(rights))
    return StereoDataset((left_t - m) / s, (right_t - m) / s, torch.from_numpy(np.stack(disps)), info)
