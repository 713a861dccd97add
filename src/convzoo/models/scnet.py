"""SCNet (S2): a fully 1×1 SR network; every spatial aggregation is the parameter-free shift of eight channel groups.

Blocks are ``1×1 → shift → ReLU → 1×1`` with a residual (SRResNet without BN, kernels 1); each ×2 (or ×3) upsampler
is ``1×1 → LeakyReLU(0.02) → shift → 1×1`` around a resize, and a bilinear copy of the input is added at the end.
No kernel is wider than 1. Shapes: ``(N, 3, H, W) → (N, 3, sH, sW)``.

``upsampler``: ``"pixelshuffle"`` (default; the last 1×1 widens to ``s²·C`` and a pixel shuffle follows) is the form
of the released ``SCNet_arch.py`` and of its ``SCNet-T-x4-PS`` weights, the better one by the authors' test config
(which cites their Sec. 4.3, Table 7); ``"bilinear"`` (interpolate, then the shift-conv) is their ``SCNet-T-x4.yml``.

Departure, ``init``: ``"he"`` (default) starts every conv from He initialisation and the second conv of each
residual branch at a tenth of it (zero biases); the released code (``"basicsr"``, BasicSR's
``default_init_weights``) scales every conv by 0.1. With that, seven ×0.1 layers lie between the input and the
output at ×4 with no residual path through the upsamplers: the signal reaching the last conv is ~4e-7 rms for an
image in [0, 1] (He's: 0.36; test). In the ``sr`` study's budget (1,024 steps of 64² patches, Adam 5e-4, a
zero-started bicubic residual) the released init never left bicubic (±0.001 dB at ×2 and ×4, test and published
widths; nor at 4,096 steps, with EMA or with MSE). With He's, the study at the published width
(``convzoo study --task sr --models scnet_t --threads 1``) gains +0.79 dB at ×2 and +0.29 dB at ×4 over bicubic on
the held-out photographs; the bilinear upsampler with He's init gains about as much at ×4 (+0.29 dB, one run).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int
from convzoo.models._sr import check_scale, he_init, register_sr
from convzoo.ops.shift import shift_offsets, spatial_shift

__all__ = ["SCNet", "SCNetConfig", "Shift8"]

UPSAMPLERS = ("pixelshuffle", "bilinear")
INITS = ("he", "basicsr")


@dataclass(frozen=True)
class SCNetConfig:
    scale: int = 4
    width: int = 64
    blocks: int = 16
    upsampler: str = "pixelshuffle"  # or "bilinear"
    init: str = "he"  # or "basicsr", the released code's (He × 0.1 everywhere)


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
    """×``factor`` by ``mode``: ``"pixelshuffle"`` is 1×1 → LeakyReLU(0.02) → shift → 1×1 to ``factor²·width`` →
    pixel shuffle; ``"bilinear"`` interpolates first, then 1×1 → LeakyReLU(0.02) → shift → 1×1."""

    def __init__(self, width: int, factor: int, mode: str) -> None:
        super().__init__()
        self.factor, self.mode = factor, mode
        out = width * factor * factor if mode == "pixelshuffle" else width
        self.mix = nn.Sequential(_pointwise(width, width), nn.LeakyReLU(0.02), Shift8(), _pointwise(width, out))

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == "pixelshuffle":
            return F.pixel_shuffle(self.mix(x), self.factor)  # (N, C·f², H, W) → (N, C, fH, fW)
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
        mode = check_choice(cfg.upsampler, UPSAMPLERS, "upsampler", "scnet")
        self.up = nn.ModuleList(_ShiftUp(width, f, mode) for f in factors)
        self.conv_hr = _pointwise(width, width)
        self.conv_last = _pointwise(width, 3)
        if check_choice(cfg.init, INITS, "init", "scnet") == "basicsr":
            he_init(self, scale=0.1)
        else:
            he_init(self)
            for block in self.body:
                he_init(block.body[-1], scale=0.1)  # each residual branch starts small: the body near identity

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
    params_source="no published count found; the official Aitical/SCNet code at 64 channels and 16 blocks builds "
    "179,331 at ×4 with its pixel-shuffle upsampler (SCNet_arch.py) and 154,371 with the bilinear one "
    "(SCNet-T-x4.yml); the paper's table was not available to check",
    summary="S2 SCNet-T: 16 shift-conv residual blocks, 1×1 kernels only, shift-conv + pixel-shuffle upsampling",
    test_cfg={"width": 16, "blocks": 2},
)
