"""Super-resolution pairs from scikit-image's bundled colour photographs (no download).

Training pairs are patches cut from six photographs; the test split is two other photographs, whole, scored as
the field scores its benchmark images (Set5, Set14: one PSNR per image, then the mean). Each held-out photograph
is cropped at its bottom and right to a multiple of 12, so its LR image is exact at ×2, ×3 and ×4 and every scale
scores the same pixels. Scoring 64² patches of them instead let a few flat patches of sky (bicubic already at
55–57 dB, where any residual noise costs dB) outweigh the rest of the mean.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from convzoo.core.validate import check_int
from convzoo.data.base import DatasetInfo, check_split
from convzoo.registry import DATASETS

__all__ = ["SRPatchDataset", "load_sr_photos", "held_out_photo", "patches", "TRAIN_IMAGES", "TEST_IMAGES", "downscale"]

# whole images are held out for test, so no test patch shares a photograph with a training patch
TRAIN_IMAGES = ("astronaut", "coffee", "immunohistochemistry", "hubble_deep_field", "retina", "colorwheel")
TEST_IMAGES = ("chelsea", "rocket")
SCALES = (2, 3, 4)
WHOLE_MULTIPLE = 12  # the held-out photographs' sides are cropped to a multiple of every scale


def downscale(hr: Tensor, scale: int) -> Tensor:
    """Bicubic (antialiased) downscaling of ``hr`` (N, C, H, W) by ``scale``, clamped to [0, 1]."""
    h, w = hr.shape[-2:]
    return F.interpolate(hr, size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False).clamp(
        0, 1
    )


class SRPatchDataset(Dataset):
    """``(lr, hr)`` pairs: ``lr`` (3, h, w) and ``hr`` (3, sh, sw), values in [0, 1]; stacked ``(N, 3, …)`` tensors
    of patches, or lists of whole images of different sizes."""

    def __init__(self, lr: Tensor | list[Tensor], hr: Tensor | list[Tensor], info: DatasetInfo) -> None:
        self.lr, self.hr, self.info = lr, hr, info

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.lr[index], self.hr[index]


@cache
def _photo(name: str) -> Tensor:
    import skimage.data

    array = getattr(skimage.data, name)()
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)  # (3, H, W)


def patches(image: Tensor, size: int) -> Tensor:
    """Non-overlapping ``size``×``size`` patches of ``image`` (3, H, W), row-major: ``(n, 3, size, size)``."""
    grid = image.unfold(1, size, size).unfold(2, size, size)  # (3, rows, cols, size, size)
    return grid.permute(1, 2, 0, 3, 4).reshape(-1, 3, size, size)


@DATASETS.register("sr-photos", kind="sr", dims=(2,))
def load_sr_photos(
    split: str = "train", root: str | Path | None = None, *, scale: int = 2, patch: int = 96
) -> SRPatchDataset:
    """HR/LR pairs (bicubic ×2, ×3, ×4): ``patch``² patches of the training photographs; the two held-out
    photographs whole for test (``patch`` only checked there)."""
    if root is not None:
        raise ValueError(f"sr-photos: is bundled with scikit-image and takes no data folder, got {str(root)!r}")
    check_split("sr-photos", split)
    if scale not in SCALES:
        raise ValueError(f"sr-photos: scale must be one of {SCALES}, got {scale!r}")
    if check_int(patch, "patch", "sr-photos") % scale:
        raise ValueError(f"sr-photos: patch must be a positive multiple of the scale {scale}, got {patch!r}")
    if split == "train":
        hr = torch.cat([patches(_photo(n), patch) for n in TRAIN_IMAGES])  # (N, 3, P, P)
        lr = downscale(hr, scale)  # (N, 3, P/s, P/s)
        size = (patch, patch)
    else:
        hr = [held_out_photo(n) for n in TEST_IMAGES]  # (3, H, W) each, H and W multiples of 12
        lr = [downscale(image[None], scale)[0] for image in hr]  # (3, H/s, W/s)
        size = tuple(hr[0].shape[-2:])
    info = DatasetInfo("sr-photos", split, 0, 3, size, (), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), extra={"scale": scale})
    return SRPatchDataset(lr, hr, info)


def held_out_photo(name: str) -> Tensor:
    """The test photograph ``name`` (3, H, W), cropped at its bottom and right to sides that are multiples of 12."""
    image = _photo(name)
    h, w = (side - side % WHOLE_MULTIPLE for side in image.shape[-2:])
    return image[:, :h, :w]
