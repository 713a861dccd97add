"""CARN and CARN-M (S28): cascading residual network, local and global cascades of 1×1-fused residual blocks.

CARN-M is the efficient variant: each cascading block reuses one residual-E block (grouped 3×3, 3×3, 1×1) three
times, and its upsampler convs are grouped too. Both hold one upsampler per scale (×2, ×3, ×4) like the paper's
multi-scale models, whose published counts include all three; ``scale`` picks the one a forward uses.

Departure: the convolutions start from He initialisation (``init="he"``, the default); the released code keeps
PyTorch's default (``init="pytorch"``: uniform, variance 1/(3·fan-in)), under which each conv + ReLU shrinks the
signal about sixfold, so the upsampler's output is ~0.03 at the start and a zero-started last conv (the ``sr``
task's bicubic residual) sees too little to learn from in a CPU budget: CARN ×4 at its test width stayed exactly at
bicubic after 512 steps with PyTorch's init, and gained +0.04 dB with He's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_groups, check_int
from convzoo.models._sr import SCALES, MeanShift, check_scale, he_init, register_sr

__all__ = ["CARN", "CARNConfig"]


@dataclass(frozen=True)
class CARNConfig:
    scale: int = 4
    width: int = 64
    blocks: int = 3
    group: int = 1  # 4 in CARN-M
    efficient: bool = False  # CARN-M's residual-E block, shared within a cascading block
    multi_scale: bool = True
    init: str = "he"  # or "pytorch", the released code's (PyTorch's default)


class _Residual(nn.Module):
    """CARN's residual block (3×3, ReLU, 3×3, add, ReLU) or, ``efficient``, residual-E (grouped 3×3 ×2 then 1×1)."""

    def __init__(self, width: int, group: int, efficient: bool) -> None:
        super().__init__()
        if efficient:
            self.body = nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1, groups=group),
                nn.ReLU(),
                nn.Conv2d(width, width, 3, padding=1, groups=group),
                nn.ReLU(),
                nn.Conv2d(width, width, 1),
            )
        else:
            self.body = nn.Sequential(
                nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1)
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + x)


class _Cascade(nn.Module):
    """Cascading: unit ``i`` sees the concat of the input and all earlier unit outputs, fused by a 1×1 conv + ReLU.

    ``units`` holds one module per step, or one module used at every step (CARN-M's shared residual-E).
    """

    def __init__(self, width: int, units: list[nn.Module], steps: int) -> None:
        super().__init__()
        self.units = nn.ModuleList(units)
        self.steps = steps
        self.fuse = nn.ModuleList(nn.Sequential(nn.Conv2d(width * (i + 2), width, 1), nn.ReLU()) for i in range(steps))

    def forward(self, x: Tensor) -> Tensor:
        cascade, out = x, x
        for i in range(self.steps):
            unit = self.units[i if len(self.units) > 1 else 0]
            cascade = torch.cat([cascade, unit(out)], dim=1)  # (N, (i + 2)·C, H, W)
            out = self.fuse[i](cascade)
        return out


def _upsampler(width: int, scale: int, group: int) -> nn.Sequential:
    """Grouped 3×3 conv to ``r²·C`` + ReLU + ``pixel_shuffle(r)``, once for ×2 and ×3, twice (r = 2) for ×4."""
    step = 3 if scale == 3 else 2
    layers: list[nn.Module] = []
    for _ in range(round(math.log(scale, step))):
        layers += [nn.Conv2d(width, width * step * step, 3, padding=1, groups=group), nn.ReLU(), nn.PixelShuffle(step)]
    return nn.Sequential(*layers)


class CARN(nn.Module):
    """Mean shift → 3×3 entry → global cascade of ``blocks`` local cascades → upsampler → 3×3 exit → mean shift."""

    def __init__(self, cfg: CARNConfig) -> None:
        super().__init__()
        self.scale = check_scale(cfg.scale, "carn")
        width = check_int(cfg.width, "width", "carn")
        group = check_groups(cfg.group, "carn", width=width)
        steps = check_int(cfg.blocks, "blocks", "carn")
        self.sub_mean, self.add_mean = MeanShift(sign=-1), MeanShift(sign=+1)
        self.entry = nn.Conv2d(3, width, 3, padding=1)

        def block() -> nn.Module:
            count = 1 if cfg.efficient else steps
            return _Cascade(width, [_Residual(width, group, cfg.efficient) for _ in range(count)], steps)

        self.body = _Cascade(width, [block() for _ in range(steps)], steps)
        scales = SCALES if cfg.multi_scale else (self.scale,)
        self.upsample = nn.ModuleDict({f"x{s}": _upsampler(width, s, group) for s in scales})
        self.exit = nn.Conv2d(width, 3, 3, padding=1)
        if check_choice(cfg.init, ("he", "pytorch"), "init", "carn") == "he":
            he_init(self)

    def forward(self, x: Tensor) -> Tensor:
        features = self.body(self.entry(self.sub_mean(x)))  # (N, C, H, W)
        return self.add_mean(self.exit(self.upsample[f"x{self.scale}"](features)))  # (N, 3, sH, sW)


_SOURCE = "CARN paper (Ahn et al., ECCV 2018) Table/Fig. 1, multi-scale models with ×2/×3/×4 upsamplers"
register_sr(
    "carn",
    CARN,
    CARNConfig(),
    papers=("carn",),
    params=1_592_000,
    params_source=f"{_SOURCE}: CARN 1,592K; official nmhkahn/CARN-pytorch carn.py builds 1,591,939 (+24 frozen "
    "mean-shift weights)",
    summary="S28 CARN: 3 cascading blocks of 3 residual blocks, 1×1 cascades, multi-scale pixel-shuffle upsampler",
    test_cfg={"width": 8, "blocks": 2},
)
register_sr(
    "carn_m",
    CARN,
    CARNConfig(group=4, efficient=True),
    papers=("carn",),
    params=None,
    params_source=f"{_SOURCE}: CARN-M 412K, NOT matched: this build, laid out as the official carn_m.py "
    "(shared residual-E, group 4, grouped multi-scale upsampler), counts 414,787 (+0.68%); its weights without "
    "the biases count 412,032, but CARN's 1,592K includes its biases (1,588,608 without)",
    summary="S28 CARN-M: CARN with shared grouped residual-E blocks (group 4) and grouped upsampler convs",
    test_cfg={"width": 8, "blocks": 2},
)
