"""SamplingAug (S52): LR/HR patch pairs drawn with probability growing with how informative the patch is.

A patch's importance is how badly bicubic interpolation restores it: the sum, over the patch, of the squared error
between the HR image and its bicubic re-upscaled LR. Scoring every patch position costs one integral image (summed-area
table) and four look-ups per position instead of a sum over the patch (the paper's two orders of magnitude). Positions
are sampled proportionally to their score; ``SamplingAugDataset`` serves them as ``(lr, hr)`` pairs, a drop-in sampler
for the ``sr-photos`` images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from convzoo.core.validate import check_int
from convzoo.data.sr_photos import SCALES, TEST_IMAGES, TRAIN_IMAGES, _photo, downscale

__all__ = [
    "integral_image",
    "patch_sums",
    "bicubic_error",
    "importance_map",
    "SamplingAugDataset",
    "sampling_aug_pairs",
]


def integral_image(x: Tensor) -> Tensor:
    """Summed-area table of (…, H, W) zero-padded: ``out[…, i, j] = Σ x[…, :i, :j]``, (…, H+1, W+1)."""
    table = x.double().cumsum(-1).cumsum(-2)
    return F.pad(table, (1, 0, 1, 0))


def patch_sums(x: Tensor, size: int) -> Tensor:
    """Σ of every ``size``×``size`` window of (…, H, W) from its integral image: (…, H − size + 1, W − size + 1)."""
    t = integral_image(x)
    return t[..., size:, size:] - t[..., :-size, size:] - t[..., size:, :-size] + t[..., :-size, :-size]


def bicubic_error(hr: Tensor, scale: int) -> Tensor:
    """Per-pixel squared error of bicubic ×``scale`` restoring ``hr`` (3, H, W) from its downscaled LR: (H, W)."""
    h, w = hr.shape[-2:]
    hr = hr[..., : h - h % scale, : w - w % scale].unsqueeze(0)  # (1, 3, H', W')
    restored = F.interpolate(downscale(hr, scale), scale_factor=scale, mode="bicubic", align_corners=False)
    return (restored - hr).pow(2).sum(1)[0]  # (H', W')


def importance_map(hr: Tensor, scale: int, patch: int) -> Tensor:
    """Importance of the HR patch at each top-left position on the ``scale`` grid: (rows, cols), float64."""
    sums = patch_sums(bicubic_error(hr, scale), patch)
    return sums[::scale, ::scale]  # top-left corners that map to whole LR pixels


class SamplingAugDataset(Dataset):
    """``length`` ``(lr, hr)`` pairs (3, P/s, P/s) and (3, P, P) whose positions are drawn ∝ importance.

    ``uniform=True`` draws positions uniformly instead (the baseline the paper compares with). Draws are fixed at
    construction from ``seed``, so an epoch is reproducible.
    """

    def __init__(
        self,
        images: list[Tensor],
        *,
        scale: int = 2,
        patch: int = 48,
        length: int = 1000,
        seed: int = 0,
        uniform: bool = False,
    ) -> None:
        if scale not in SCALES:
            raise ValueError(f"samplingaug: scale must be one of {SCALES}, got {scale!r}")
        if check_int(patch, "patch", "samplingaug") % scale:
            raise ValueError(f"samplingaug: patch must be a multiple of the scale {scale}, got {patch!r}")
        check_int(length, "length", "samplingaug")
        self.scale, self.patch, self.images = scale, patch, images
        maps = [importance_map(image, scale, patch) for image in images]
        weights = torch.cat([torch.ones_like(m).flatten() if uniform else m.flatten() for m in maps])
        generator = torch.Generator().manual_seed(seed)
        picks = torch.multinomial(weights.clamp_min(0).float() + 1e-12, length, replacement=True, generator=generator)
        self.positions: list[tuple[int, int, int]] = []
        offsets = torch.tensor([0] + [m.numel() for m in maps]).cumsum(0)
        for pick in picks.tolist():
            index = int(torch.searchsorted(offsets, pick, right=True)) - 1
            rows, cols = maps[index].shape
            local = pick - int(offsets[index])
            self.positions.append((index, local // cols * scale, local % cols * scale))

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        index, top, left = self.positions[i]
        hr = self.images[index][:, top : top + self.patch, left : left + self.patch]  # (3, P, P)
        return downscale(hr.unsqueeze(0), self.scale)[0], hr


def sampling_aug_pairs(
    split: str = "train", *, scale: int = 2, patch: int = 48, length: int = 1000, seed: int = 0, uniform: bool = False
) -> SamplingAugDataset:
    """Importance-sampled pairs from the ``sr-photos`` images of ``split`` (the same held-out test photographs)."""
    names = TRAIN_IMAGES if split == "train" else TEST_IMAGES
    return SamplingAugDataset(
        [_photo(n) for n in names], scale=scale, patch=patch, length=length, seed=seed, uniform=uniform
    )
