"""A procedural shapes-segmentation set (no download): discs, squares and triangles on textured backgrounds, with
exact masks, generated from a fixed seed.

Each image ``(3, size, size)`` has a textured background — two random colours mixed by a random sinusoidal
grating, plus pixel noise — and 1–4 shapes drawn in turn (a later one covers an earlier one), each filled with its
own random colour plus pixel noise. A pixel belongs to a shape when its centre ``(x + ½, y + ½)`` is inside it
(a disc: distance to the centre ≤ radius; a square: rotated by a random angle, both rotated coordinates within
the half side; a triangle: an equilateral one, rotated, the three edge functions ≥ 0); the image is painted from
that same mask, so the label map is exact. Classes: 0 background, 1 disc, 2 square, 3 triangle. The test split
is drawn from another seed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch

from convzoo.core.validate import check_int
from convzoo.data.base import DatasetInfo, check_split, standardize
from convzoo.data.dense import SegmentationDataset
from convzoo.registry import DATASETS

__all__ = ["load_shapes", "render_shapes", "CLASS_NAMES", "shape_mask"]

CLASS_NAMES = ("background", "disc", "square", "triangle")
SEEDS = {"train": 1701, "test": 2903}
LENGTHS = {"train": 768, "test": 192}


def shape_mask(kind: int, cx: float, cy: float, radius: float, angle: float, size: int) -> np.ndarray:
    """``(size, size)`` bool: the pixel centres inside the shape ``kind`` (1 disc, 2 square, 3 triangle) of
    centre ``(cx, cy)``, circumradius ``radius`` (a disc's radius, a square's half diagonal) and rotation
    ``angle`` (radians)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5  # pixel centres, (size, size) each
    dx, dy = x - cx, y - cy
    if kind == 1:
        return dx * dx + dy * dy <= radius * radius
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy  # coordinates in the shape's rotated frame
    if kind == 2:
        half = radius / np.sqrt(2.0)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if kind == 3:
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):  # edge k faces the outward normal at angle θ_k; its distance from the centre is r/2
            theta = 2 * np.pi * k / 3
            inside &= u * np.cos(theta) + v * np.sin(theta) <= radius / 2
        return inside
    raise ValueError(f"shape_mask: kind must be 1 (disc), 2 (square) or 3 (triangle), got {kind!r}")


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """``(3, size, size)`` in [0, 1]: two random colours mixed by a random grating, plus pixel noise."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    frequency, direction, phase = rng.uniform(0.05, 0.4), rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
    wave = 0.5 + 0.5 * np.sin(frequency * (x * np.cos(direction) + y * np.sin(direction)) + phase)  # (size, size)
    a, b = rng.uniform(0, 1, (2, 3, 1, 1))
    texture = a * wave + b * (1 - wave) + rng.normal(0, 0.04, (3, size, size))
    return np.clip(texture, 0, 1)


def render_shapes(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` images ``(count, 3, size, size)`` float32 in [0, 1] and label maps ``(count, size, size)``
    int64, from ``seed``."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, 3, size, size), np.float32)
    labels = np.zeros((count, size, size), np.int64)
    for i in range(count):
        image = _texture(rng, size)
        for _ in range(rng.integers(1, 5)):
            kind = int(rng.integers(1, 4))
            radius = rng.uniform(0.12, 0.3) * size
            cx, cy = rng.uniform(0.1, 0.9, 2) * size
            mask = shape_mask(kind, cx, cy, radius, rng.uniform(0, 2 * np.pi), size)
            fill = rng.uniform(0, 1, (3, 1, 1)) + rng.normal(0, 0.04, (3, size, size))  # flat colour + noise
            image = np.where(mask, np.clip(fill, 0, 1), image)
            labels[i][mask] = kind
        images[i] = image
    return images, labels


@cache
def _rendered(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = render_shapes(count, size, seed)
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


@DATASETS.register("shapes", kind="seg", dims=(2,))
def load_shapes(
    split: str = "train", root: str | Path | None = None, *, size: int = 48, length: int | None = None
) -> SegmentationDataset:
    """Procedural shapes on textured backgrounds (768 train, 192 test images of ``size``²), exact masks."""
    if root is not None:
        raise ValueError(f"shapes: is generated and takes no data folder, got {str(root)!r}")
    check_split("shapes", split)
    check_int(size, "size", "shapes", low=16)
    length = LENGTHS[split] if length is None else check_int(length, "length", "shapes")
    train, _ = _rendered(LENGTHS["train"], size, SEEDS["train"])  # the statistics are the training split's
    images, labels = _rendered(length, size, SEEDS[split])
    mean, std, (_, images_t) = standardize(torch.tensor(train), torch.tensor(images))
    info = DatasetInfo(
        "shapes", split, len(CLASS_NAMES), 3, (size, size), CLASS_NAMES, mean, std, extra={"ignore_index": 255}
    )
    return SegmentationDataset(images_t, torch.from_numpy(labels.copy()), info)
