"""Stage shapes the suites measure at: (channels, spatial side) of each stage at 224×224 input."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["CONVNEXT_T", "QUICK", "RESNET18", "UNIREPLKNET_T_LARGE_KERNEL", "feature_map"]

RESNET18 = ((64, 56), (128, 28), (256, 14), (512, 7))  # torchvision resnet18, stages 1-4
CONVNEXT_T = ((96, 56), (192, 28), (384, 14), (768, 7))  # ConvNeXt-T (S67), dims (96, 192, 384, 768)
# UniRepLKNet-T: dims (80, 160, 320, 640); its 13×13 Dilated Reparam Blocks are in stages 2-4 (stage 1 is 3×3),
# per default_UniRepLKNet_T_kernel_sizes in AILab-CVC/UniRepLKNet.
UNIREPLKNET_T_LARGE_KERNEL = ((160, 28), (320, 14), (640, 7))
QUICK = ((16, 8), (32, 4))  # tiny shapes for --quick: every case runs in milliseconds


def feature_map(batch: int, channels: int, side: int) -> Tensor:
    """A seeded N(0, 1) input ``(batch, channels, side, side)``."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, channels, side, side, generator=generator)
