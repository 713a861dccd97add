"""SCNet (S2): a fully 1×1 SR network; every spatial aggregation is the parameter-free shift of eight channel groups.

Blocks are ``1×1 → shift → ReLU → 1×1`` with a residual (SRResNet without BN, kernels 1); the upsampler interpolates
bilinearly and mixes with shift-convs; a bilinear copy of the input is added at the end. No kernel is wider than 1.
Every conv starts as the released code's (BasicSR's ``default_init_weights``): He normal weights times 0.1, zero
biases.

Training: the upsampler has no residual path, so with that init the signal reaching the last conv is ~1e-4 and the
network learns slowly (the released recipe runs 300k iterations). Started as a bicubic residual with its last conv
at zero (the ``sr`` task's ``residual`` option) it does not move at all: 1,024 to 4,096 steps at ×2 and ×4 end at
bicubic to ±0.001 dB. In its own form (bilinear skip) the large, systematic bilinear error wakes it up at ×2: at its
test width, Adam 1e-3, L1, it passes bicubic after about 1,800 steps (+0.19 dB at 2,400); at ×4 it stayed at the
bilinear level (−0.49 dB) for 2,400 steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models._sr import check_scale, he_init, register_sr
from convzoo.ops.shift import shift_offsets, spatial_shift

__all__ = ["SCNet", "SCNetConfig", "Shift8"]


@dataclass(frozen=True)
class SCNetConfig:
    scale: int = 4
    width: int = 64
    blocks: int = 16


class Shift8(nn.Module):
    """Eight channel groups each moved one pixel towards one of the 8 neighbours (zero fill): no parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.offsets = shift_offsets(2, "all")

    def forward(self, x: Tensor) -> Tensor:
        return spatial_shift(x, self.offsets, (1, 1), (1, 1))


def _pointwise(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


class _ShiftBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_pointwise(width, width), Shift8(), nn.ReLU(), _pointwise(width, width))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class _ShiftUp(nn.Module):
    """Bilinear ×``factor``, then 1×1 → LeakyReLU(0.02) → shift → 1×1."""

    def __init__(self, width: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.mix = nn.Sequential(_pointwise(width, width), nn.LeakyReLU(0.02), Shift8(), _pointwise(width, width))

    def forward(self, x: Tensor) -> Tensor:
        return self.mix(F.interpolate(x, scale_factor=self.factor, mode="bilinear", align_corners=False))


class SCNet(nn.Module):
    def __init__(self, cfg: SCNetConfig) -> None:
        super().__init__()
        self.scale = check_scale(cfg.scale, "scnet")
        width = check_int(cfg.width, "width", "scnet")
        if width % 8:
            raise ValueError(
                f"scnet: width must be a multiple of 8 (one channel group per shift direction), got {width}"
            )
        self.head = _pointwise(3, width)
        self.body = nn.Sequential(*(_ShiftBlock(width) for _ in range(check_int(cfg.blocks, "blocks", "scnet"))))
        factors = (2, 2) if self.scale == 4 else (self.scale,)
        self.up = nn.ModuleList(_ShiftUp(width, f) for f in factors)
        self.conv_hr = _pointwise(width, width)
        self.conv_last = _pointwise(width, 3)
        he_init(self, scale=0.1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.body(F.leaky_relu(self.head(x), 0.1))
        for up in self.up:
            out = F.leaky_relu(up(out), 0.1)  # (N, C, fH, fW)
        out = self.conv_last(F.leaky_relu(self.conv_hr(out), 0.1))
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


register_sr(
    "scnet_t",
    SCNet,
    SCNetConfig(),
    papers=("scnet-sr",),
    params=None,
    params_source="no published count found: the official Aitical/SCNet SCNet_arch.py with SCNet-T-x4.yml "
    "(64 channels, 16 blocks) builds 154,371 at ×4; the paper's table was not available to check",
    summary="S2 SCNet-T: 16 shift-conv residual blocks, 1×1 kernels only, bilinear + shift-conv upsampling",
    test_cfg={"width": 16, "blocks": 2},
)
