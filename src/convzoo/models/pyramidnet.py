"""PyramidNet (S91, Han et al., "Deep Pyramidal Residual Networks", CVPR 2017): additive widening, CIFAR form."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.models.base import ClassifierHead, ConvNet, FeatureInfo
from convzoo.models.registration import make_mixer, register_variant

__all__ = ["PyramidNetConfig", "PyramidNet", "pyramid_widths"]


@dataclass(frozen=True)
class PyramidNetConfig:
    """One additive PyramidNet with basic pyramidal units (two 3×3 convs per unit).

    ``depth`` = 6·n + 2 (n units per stage, three stages); ``alpha`` is the total widening α
    spread over the 3·n units; ``stem_width`` is the 16 channels of the first conv.
    """

    depth: int = 110
    alpha: int = 48
    stem_width: int = 16
    drop_rate: float = 0.0


def pyramid_widths(stem_width: int, alpha: int, units: int) -> list[int]:
    """Widths of the ``units`` residual units: ``round(stem_width + alpha · k / units)`` for k = 1 … units.

    The paper's additive rule (Eq. 2) grows the width by α/N per unit and rounds it; the official
    code accumulates the float and rounds with Python's ``round``. Here the rounding is half-up in
    exact integer arithmetic, which agrees with it whenever no width falls on an exact .5
    (never for α = 48, N = 54).
    """
    # round-half-up of (stem·N + α·k) / N without floating point
    return [(2 * (stem_width * units + alpha * k) + units) // (2 * units) for k in range(1, units + 1)]


class _PyramidalUnit(nn.Module):
    """BN → conv3×3 → BN → ReLU → conv3×3 → BN, plus a zero-padded identity shortcut (no ReLU after the add).

    With stride 2 the shortcut is a 2×2 average pool (the official code's downsampling shortcut);
    the extra ``out − in`` channels of the shortcut are zeros appended after the input's channels.
    The two 3×3 convs are the spatial mixers that ``op=`` replaces.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, position: str, op: str | None) -> None:
        super().__init__()

        def first() -> nn.Module:
            return nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)

        def second() -> nn.Module:
            return nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)

        self.body = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            make_mixer(f"{position}.mixer", op, first, in_ch, out_ch, 3, stride),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            make_mixer(f"{position}.mixer2", op, second, out_ch, out_ch, 3),
            nn.BatchNorm2d(out_ch),
        )
        # ceil_mode keeps ceil(S / 2) outputs for odd sizes, as the strided conv does
        self.pool = nn.AvgPool2d(2, 2, ceil_mode=True) if stride > 1 else nn.Identity()
        self.extra_channels = out_ch - in_ch

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.pool(x)
        if self.extra_channels:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra_channels))  # (N, C_out, H', W'): zeros appended
        return self.body(x) + shortcut


class PyramidNet(ConvNet):
    """PyramidNet (S91): the width grows by α / N at every residual unit instead of doubling at each stage.

    CIFAR layout as in the paper and the official code (dyhan0920/PyramidNet-PyTorch): a 3×3 conv
    (16 channels) + BN, three stages of n = (depth − 2) / 6 pyramidal units (strides 1, 2, 2), unit
    k of N = 3n having ``round(16 + α·k/N)`` channels; each unit is BN-conv-BN-ReLU-conv-BN with a
    zero-padded identity shortcut (2×2 average pool where the unit downsamples). The final BN + ReLU
    is ``final_norm``; then global pool and a linear classifier.
    """

    def __init__(
        self, cfg: PyramidNetConfig, *, num_classes: int = 10, in_chans: int = 3, op: str | None = None
    ) -> None:
        super().__init__()
        if cfg.depth < 8 or (cfg.depth - 2) % 6:
            raise ValueError(f"pyramidnet: depth must be 6·n + 2 with n ≥ 1 (basic units), got {cfg.depth!r}")
        if cfg.alpha < 0 or cfg.stem_width < 1:
            raise ValueError(
                f"pyramidnet: alpha must be ≥ 0 and stem_width ≥ 1, got alpha={cfg.alpha!r}, "
                f"stem_width={cfg.stem_width!r}"
            )
        n = (cfg.depth - 2) // 6
        widths = pyramid_widths(cfg.stem_width, cfg.alpha, 3 * n)
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, cfg.stem_width, 3, 1, 1, bias=False), nn.BatchNorm2d(cfg.stem_width)
        )
        in_ch, reduction = cfg.stem_width, 1
        stages, self.feature_info = [], []
        for i in range(3):
            units = []
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                out_ch = widths[i * n + j]
                units.append(_PyramidalUnit(in_ch, out_ch, stride, f"stages.{i}.{j}", op))
                in_ch = out_ch
            reduction *= 2 if i > 0 else 1
            stages.append(nn.Sequential(*units))
            self.feature_info.append(FeatureInfo(f"stages.{i}", in_ch, reduction))
        self.stages = nn.ModuleList(stages)
        self.final_norm = nn.Sequential(nn.BatchNorm2d(in_ch), nn.ReLU(inplace=True))
        self.head = ClassifierHead(in_ch, num_classes, drop=cfg.drop_rate)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # the official init: N(0, sqrt(2 / (k·k·C_out)))
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


register_variant(
    "pyramidnet110_a48",
    PyramidNet,
    PyramidNetConfig(depth=110, alpha=48),
    papers=("pyramidnet",),
    params=1_772_706,
    params_source=(
        "S91 Table 4: 1.7M (truncated); 1,772,706 counted from the official dyhan0920/PyramidNet-PyTorch "
        "definition (basic units, 10 classes)"
    ),
    input_size=(3, 32, 32),
    num_classes=10,
    summary="PyramidNet-110 α=48 (S91): 54 basic pyramidal units widening additively from 16 to 64 channels, CIFAR",
)
