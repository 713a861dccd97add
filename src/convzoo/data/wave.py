"""A 2-d wave-equation simulator and its next-frame prediction set (``wave``), as in the catalog's compression
paper (S13, "A priori compression of convolutional neural networks for wave simulators"): generated, seeded.

The field ``u(x, y, t)`` obeys ``u_tt = c² (u_xx + u_yy)`` on the unit square with ``u = 0`` on the boundary.
Finite differences: the 5-point Laplacian on an ``n × n`` interior grid (spacing ``h = 1/(n + 1)``) and the
leapfrog (central) step ``u⁺ = 2u − u⁻ + r² h² Δ_h u`` with Courant number ``r = c·dt/h ≤ 1/√2`` (stable). A run
starts at rest (zero initial velocity: the first step is the Taylor step ``u¹ = u⁰ + ½ r² h² Δ_h u⁰``) from 1–3
random Gaussian pulses. Examples are ``(u⁻, u)`` → ``u⁺`` after a warm-up: inputs ``(2, n, n)``, targets ``(1, n, n)``
(the scheme is second order in time, so two frames determine the next).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from convzoo.core.validate import check_int, check_number
from convzoo.data.base import DatasetInfo, check_split
from convzoo.registry import DATASETS

__all__ = ["laplacian", "simulate", "WaveFrames", "load_wave"]

SEEDS = {"train": 31, "test": 97}
RUNS = {"train": 24, "test": 6}


def laplacian(u: np.ndarray, h: float) -> np.ndarray:
    """The 5-point Laplacian of ``u`` (..., n, n) with zero (Dirichlet) values outside the grid."""
    padded = np.pad(u, [(0, 0)] * (u.ndim - 2) + [(1, 1), (1, 1)])
    return (padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:] - 4 * u) / (
        h * h
    )


def simulate(u0: np.ndarray, steps: int, courant: float = 0.5) -> np.ndarray:
    """``steps + 1`` frames ``(steps + 1, n, n)`` of the leapfrog scheme from ``u0`` at rest, Courant ``courant``."""
    n = u0.shape[-1]
    h = 1.0 / (n + 1)
    k = courant * courant * h * h  # r² h²
    frames = [u0, u0 + 0.5 * k * laplacian(u0, h)]  # zero initial velocity: the Taylor step
    for _ in range(steps - 1):
        frames.append(2 * frames[-1] - frames[-2] + k * laplacian(frames[-1], h))
    return np.stack(frames)


def _pulses(rng: np.random.Generator, n: int) -> np.ndarray:
    grid = (np.arange(n) + 1) / (n + 1)
    y, x = np.meshgrid(grid, grid, indexing="ij")
    u = np.zeros((n, n))
    for _ in range(rng.integers(1, 4)):
        cx, cy = rng.uniform(0.2, 0.8, 2)
        width, amplitude = rng.uniform(0.04, 0.1), rng.uniform(0.5, 1.0) * rng.choice((-1, 1))
        u += amplitude * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * width**2))
    return u


class WaveFrames(Dataset):
    """``(frames (2, n, n), next (1, n, n))`` float32 pairs: ``(u⁻, u)`` → ``u⁺``."""

    def __init__(self, inputs: Tensor, targets: Tensor, info: DatasetInfo) -> None:
        self.inputs, self.targets, self.info = inputs, targets, info

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]


@cache
def _frames(split: str, size: int, steps: int, courant: float) -> tuple[Tensor, Tensor]:
    rng = np.random.default_rng(SEEDS[split])
    inputs, targets = [], []
    for _ in range(RUNS[split]):
        frames = simulate(_pulses(rng, size), steps, courant)  # (steps + 1, n, n)
        for t in range(steps // 4, steps):  # after a warm-up, so waves have spread
            inputs.append(frames[t - 1 : t + 1])
            targets.append(frames[t + 1 : t + 2])
    return torch.from_numpy(np.stack(inputs)).float(), torch.from_numpy(np.stack(targets)).float()


@DATASETS.register("wave", kind="field", dims=(2,))
def load_wave(
    split: str = "train", root: str | Path | None = None, *, size: int = 32, steps: int = 40, courant: float = 0.5
) -> WaveFrames:
    """Next-frame pairs of seeded 2-d wave simulations (24 train, 6 test runs of ``steps`` leapfrog steps)."""
    if root is not None:
        raise ValueError(f"wave: is simulated and takes no data folder, got {str(root)!r}")
    check_split("wave", split)
    check_int(size, "size", "wave", low=4)
    check_int(steps, "steps", "wave", low=8)
    check_number(courant, "courant", "wave", low=0.0, high=2**-0.5)
    inputs, targets = _frames(split, size, steps, float(courant))
    info = DatasetInfo(
        "wave", split, 0, 2, (size, size), (), (0.0, 0.0), (1.0, 1.0), extra={"steps": steps, "courant": courant}
    )
    return WaveFrames(inputs.clone(), targets.clone(), info)
