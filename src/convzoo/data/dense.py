"""What the dense-prediction datasets return: images with a label map (segmentation) or a stereo pair with its
disparity map, and the colour palette that draws a label map.

Segmentation sets hold ``images`` ``(N, C, H, W)`` float32 (standardised) and ``masks`` ``(N, H, W)`` int64 class
indices, :data:`IGNORE_INDEX` where unlabelled. Stereo sets hold ``left``/``right`` ``(N, C, H, W)`` and
``disparity`` ``(N, H, W)`` float32 in pixels (the left view's: ``left[y, x]`` is seen at ``right[y, x − d]``),
NaN where unknown.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.utils.data import Dataset

from convzoo.data.base import DatasetInfo

__all__ = ["IGNORE_INDEX", "SegmentationDataset", "StereoDataset", "palette", "colour_mask"]

IGNORE_INDEX = 255  # the label of unlabelled pixels (PASCAL VOC's object boundaries)


class SegmentationDataset(Dataset):
    """Images ``(N, C, H, W)`` and label maps ``(N, H, W)`` int64 held in memory."""

    def __init__(self, images: Tensor, masks: Tensor, info: DatasetInfo) -> None:
        if images.dim() != 4 or masks.dim() != 3 or images.shape[0] != masks.shape[0]:
            raise ValueError(
                f"{info.name}: expected images (N, C, H, W) and masks (N, H, W), got {tuple(images.shape)} and "
                f"{tuple(masks.shape)}"
            )
        if images.shape[-2:] != masks.shape[-2:]:
            raise ValueError(f"{info.name}: images are {tuple(images.shape[-2:])} but masks {tuple(masks.shape[-2:])}")
        self.images, self.masks, self.info = images, masks, info

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.masks[index]


class StereoDataset(Dataset):
    """Stereo pairs ``left``/``right`` ``(N, C, H, W)`` and the left view's ``disparity`` ``(N, H, W)``."""

    def __init__(self, left: Tensor, right: Tensor, disparity: Tensor, info: DatasetInfo) -> None:
        if left.shape != right.shape or left.dim() != 4 or disparity.shape != (left.shape[0], *left.shape[-2:]):
            raise ValueError(
                f"{info.name}: expected left and right (N, C, H, W) and disparity (N, H, W), got "
                f"{tuple(left.shape)}, {tuple(right.shape)} and {tuple(disparity.shape)}"
            )
        self.left, self.right, self.disparity, self.info = left, right, disparity, info

    def __len__(self) -> int:
        return self.left.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.left[index], self.right[index], self.disparity[index]


def palette(num_classes: int = 256) -> Tensor:
    """PASCAL VOC's colour map ``(num_classes, 3)`` uint8: class bits spread over the high bits of R, G, B."""
    colours = torch.zeros(num_classes, 3, dtype=torch.uint8)
    for label in range(num_classes):
        value, r, g, b = label, 0, 0, 0
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colours[label] = torch.tensor((r, g, b), dtype=torch.uint8)
    return colours


def colour_mask(mask: Tensor) -> Tensor:
    """``(H, W)`` integer labels → ``(H, W, 3)`` uint8 RGB in the VOC palette (``IGNORE_INDEX`` is cream white)."""
    if mask.dim() != 2:
        raise ValueError(f"colour_mask: expected an (H, W) label map, got shape {tuple(mask.shape)}")
    if mask.min() < 0 or mask.max() > 255:
        raise ValueError(f"colour_mask: labels must be in [0, 255], got [{mask.min().item()}, {mask.max().item()}]")
    return palette(256)[mask.long()]
