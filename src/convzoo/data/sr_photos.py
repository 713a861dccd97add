"""Super-resolution patch pairs cut from scikit-image's bundled colour photographs (no download)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from convzoo.core.validate import check_int
from convzoo.data.base import DatasetInfo
from convzoo.registry import DATASETS

__all__ = ["SRPatchDataset", "load_sr_photos", "TRAIN_IMAGES", "TEST_IMAGES", "downscale"]

# whole images are held out for test, so no test patch shares a photograph with a training patch
TRAIN_IMAGES = ("astronaut", "coffee", "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel")
TEST_IMAGES = ("chelsea", "rocket")
SCALES = (2, 3, 4)


def downscale(hr: Tensor, scale: int) -> Tensor:
    """Bicubic (antialiased) downscaling of ``hr`` (N, C, H, W) by ``scale``, clamped to [0, 1]."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False).clamp(
        0, 1
    )


class SRPatchDataset(Dataset):
    """``(lr, hr)`` pairs: ``lr`` (3, P/s, P/s) and ``hr`` (3, P, P), values in [0, 1]."""

    def __init__(self, lr: Tensor, hr: Tensor, info: DatasetInfo) -> None:
        self.lr, self.hr, self.info = lr, hr, info

    def __len__(self) -> int:
        return self.hr.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.lr[index], self.hr[index]


@cache
def _photo(name: str) -> Tensor:
    import skimage.data

    array = getattr(skimage.data, name)()
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)


def _patches(image: Tensor, size: int) -> Tensor:
    """Non-overlapping ``size``×``size`` patches of ``image`` (3, H, W), row-major: ``(n, 3, size, size)``."""
    patches = image.unfold(1, size, size).unfold(2, size, size)  # (3, rows, cols, size, size)
    return patches.permute(1, 2, 0, 3, 4).reshape(-1, 3, size, size)


@DATASETS.register("sr-photos", kind="sr", dims=(2,))
def load_sr_photos(
    split: str = "train", root: str | Path | None = None, *, scale: int = 2, patch: int = 96
) -> SRPatchDataset:
    """HR/LR patch pairs (bicubic ×2, ×3, ×4) from scikit-image's photographs; two whole images held out for test."""
    if root is not None:
        raise ValueError(f"sr-photos: is bundled with scikit-image and takes no data folder, got {str(root)!r}")
    if scale not in SCALES:
        raise ValueError(f"sr-photos: scale must be one of {SCALES}, got {scale!r}")
    if check_int(patch, "patch", "sr-photos") % scale:
        raise ValueError(f"sr-photos: patch must be a positive multiple of the scale {scale}, got {patch!r}")
    names = TRAIN_IMAGES if split == "train" else TEST_IMAGES
    hr = torch.cat([_patches(_photo(n), patch) for n in names])  # (N, 3, P, P)
    lr = downscale(hr, scale)  # (N, 3, P/s, P/s)
    info = DatasetInfo(
        "sr-photos", split, 0, 3, (patch, patch), (), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), extra={"scale": scale}
    )
    return SRPatchDataset(lr, hr, info)
