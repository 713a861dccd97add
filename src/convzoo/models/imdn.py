"""IMDN (S31): information multi-distillation blocks with contrast-aware channel attention (CCA).

Each IMDB runs four 3×3 convs; after each of the first three it keeps a quarter of the channels (distilled) and
refines the rest; the four distilled parts are concatenated, weighted by CCA and fused by a 1×1 conv. The paper's
adaptive cropping strategy (inference on overlapping tiles) is :func:`convzoo.models.sr_tiling.tiled_upscale`;
CCA pools over the whole image, so on IMDN tiles agree with the whole image closely but not exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models._sr import PixelShuffleTail, check_scale, register_sr

__all__ = ["IMDN", "IMDNConfig", "contrast"]


@dataclass(frozen=True)
class IMDNConfig:
    scale: int = 4
    width: int = 64
    blocks: int = 6
    distill: float = 0.25
    reduction: int = 16


def contrast(x: Tensor) -> Tensor:
    """Per-channel contrast of (N, C, H, W): standard deviation plus mean over the pixels, (N, C, 1, 1)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()
    return std + mean


class _CCA(nn.Module):
    """Contrast-aware channel attention: ``x · σ(W₂ ReLU(W₁ contrast(x)))``."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(self.fc(contrast(x)))


class _IMDB(nn.Module):
    def __init__(self, width: int, distill: float, reduction: int) -> None:
        super().__init__()
        self.kept = max(int(width * distill), 1)
        rest = width - self.kept
        self.convs = nn.ModuleList(
            [nn.Conv2d(width, width, 3, padding=1)]
            + [nn.Conv2d(rest, width, 3, padding=1) for _ in range(2)]
            + [nn.Conv2d(rest, self.kept, 3, padding=1)]
        )
        self.cca = _CCA(self.kept * 4, reduction)
        self.fuse = nn.Conv2d(self.kept * 4, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        distilled, remaining = [], x
        for conv in self.convs[:-1]:
            kept, remaining = F.leaky_relu(conv(remaining), 0.05).split(
                [self.kept, conv.out_channels - self.kept], dim=1
            )
            distilled.append(kept)
        distilled.append(self.convs[-1](remaining))
        return self.fuse(self.cca(torch.cat(distilled, dim=1))) + x  # (N, C, H, W)


class IMDN(nn.Module):
    """3×3 conv → ``blocks`` IMDBs → 1×1 fusion of all block outputs → 3×3 conv + long skip → pixel-shuffle tail."""

    def __init__(self, cfg: IMDNConfig) -> None:
        super().__init__()
        self.scale = check_scale(cfg.scale, "imdn")
        width, blocks = check_int(cfg.width, "width", "imdn"), check_int(cfg.blocks, "blocks", "imdn")
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.blocks = nn.ModuleList(_IMDB(width, cfg.distill, cfg.reduction) for _ in range(blocks))
        self.fuse = nn.Sequential(nn.Conv2d(width * blocks, width, 1), nn.LeakyReLU(0.05))
        self.body_tail = nn.Conv2d(width, width, 3, padding=1)
        self.upsample = PixelShuffleTail(width, 3, self.scale)

    def forward(self, x: Tensor) -> Tensor:
        features = self.head(x)
        outputs, out = [], features
        for block in self.blocks:
            out = block(out)
            outputs.append(out)
        fused = self.fuse(torch.cat(outputs, dim=1))  # (N, C, H, W)
        return self.upsample(self.body_tail(fused) + features)  # (N, 3, sH, sW)


register_sr(
    "imdn",
    IMDN,
    IMDNConfig(),
    papers=("imdn",),
    params=715_000,
    params_source="IMDN paper (Hui et al., ACM MM 2019) Table 4: ×4 715K (×2 694K, ×3 703K); official Zheng222/IMDN "
    "architecture.py builds 715,176",
    summary="S31 IMDN: 6 information multi-distillation blocks with contrast-aware channel attention, 64 channels",
    test_cfg={"width": 8, "blocks": 2, "reduction": 4},
)
