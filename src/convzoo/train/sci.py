"""Video snapshot compressive imaging (S104): the forward model that codes ``T`` frames with binary masks and sums
them into one snapshot, its adjoint, and the least-norm inverse that deep-unfolding networks start from.

``y = Φ(x) = Σ_t M_t ⊙ x_t`` for ``(N, T, H, W)`` frames ``x`` and ``(T, H, W)`` (or ``(N, T, H, W)``) masks ``M``;
``Φᵀ(y) = M ⊙ y`` (broadcast over ``t``). ``ΦΦᵀ`` is the diagonal ``R = Σ_t M_t²``, so
``x₀ = Φᵀ(y ⊘ R)`` is the least-norm frame stack that reproduces ``y`` exactly wherever some mask is on.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["adjoint", "least_norm", "random_masks", "snapshot", "video_psnr"]


def random_masks(frames: int, height: int, width: int, seed: int = 0, density: float = 0.5) -> Tensor:
    """``(frames, height, width)`` random binary masks (each pixel on with probability ``density``), seeded."""
    if not 0 < density <= 1:
        raise ValueError(f"random_masks: density must be in (0, 1], got {density}")
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(frames, height, width, generator=generator) < density).float()


def snapshot(frames: Tensor, masks: Tensor) -> Tensor:
    """``Φ(x)``: ``(N, T, H, W)`` frames coded by the masks and summed → ``(N, H, W)``."""
    if frames.shape[-3:] != masks.shape[-3:]:
        raise ValueError(f"snapshot: masks {tuple(masks.shape)} do not match frames {tuple(frames.shape)}")
    return (frames * masks).sum(-3)


def adjoint(measurement: Tensor, masks: Tensor) -> Tensor:
    """``Φᵀ(y)``: ``(N, H, W)`` → ``(N, T, H, W)``, the snapshot spread back through each mask."""
    return measurement.unsqueeze(-3) * masks


def least_norm(measurement: Tensor, masks: Tensor) -> Tensor:
    """``Φᵀ((ΦΦᵀ)⁻¹ y)`` with ``ΦΦᵀ = Σ_t M_t²`` (pixels no mask sees are left at 0)."""
    weight = masks.pow(2).sum(-3)  # (…, H, W)
    return adjoint(torch.where(weight > 0, measurement / weight.clamp_min(1e-12), 0.0), masks)


def video_psnr(estimate: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """PSNR in dB of each frame of ``(N, T, H, W)`` videos: ``(N, T)``, ``10 log₁₀(range² / MSE)`` (an exact frame
    scores ``10 log₁₀(range² / 1e-10)``, not infinity)."""
    if estimate.shape != target.shape:
        raise ValueError(f"video_psnr: shapes {tuple(estimate.shape)} and {tuple(target.shape)} differ")
    mse = (estimate - target).pow(2).mean(dim=(-2, -1)).clamp_min(1e-10)
    return 10 * torch.log10(data_range**2 / mse)
