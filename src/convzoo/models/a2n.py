"""A2N (S118): attention-in-attention blocks, a dynamic module weighting an attention and a non-attention branch.

Each AAB: 1×1 + LeakyReLU, then a softmax(t = 30) over two weights predicted from the pooled features mixes the
attention branch (3×3 · σ(1×1(LReLU(3×3))) then 3×3) with a plain 3×3 branch; 1×1 out, residual. The upsampler is
nearest ×2 (or ×3) + conv + pixel attention + conv, and a bilinear copy of the input is added.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.models._sr import check_scale, register_sr

__all__ = ["A2N", "A2NConfig", "branch_weights"]


@dataclass(frozen=True)
class A2NConfig:
    scale: int = 4
    width: int = 40
    up_width: int = 24
    blocks: int = 16
    reduction: int = 4
    temperature: float = 30.0


def branch_weights(logits: Tensor, temperature: float) -> Tensor:
    """The dynamic attention weights: ``softmax(logits / t)`` over the branches, (N, K)."""
    return torch.softmax(logits / temperature, dim=1)


def _conv3(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


class _AAB(nn.Module):
    def __init__(self, width: int, reduction: int, temperature: float) -> None:
        super().__init__()
        self.temperature = temperature
        self.conv_first = nn.Conv2d(width, width, 1, bias=False)
        self.conv_last = nn.Conv2d(width, width, 1, bias=False)
        self.dynamic = nn.Sequential(
            nn.Linear(width, width // reduction, bias=False), nn.ReLU(), nn.Linear(width // reduction, 2, bias=False)
        )
        self.gate = nn.Sequential(_conv3(width, width, False), nn.LeakyReLU(0.2), nn.Conv2d(width, width, 1))
        self.value = _conv3(width, width, False)
        self.attention_out = _conv3(width, width, False)
        self.non_attention = _conv3(width, width, False)

    def forward(self, x: Tensor) -> Tensor:
        y = F.leaky_relu(self.conv_first(x), 0.2)
        weights = branch_weights(self.dynamic(y.mean(dim=(2, 3))), self.temperature)  # (N, 2)
        attention = self.attention_out(self.value(y) * torch.sigmoid(self.gate(y)))
        mixed = attention * weights[:, 0, None, None, None] + self.non_attention(y) * weights[:, 1, None, None, None]
        return self.conv_last(F.leaky_relu(mixed, 0.2)) + x


class _UpStep(nn.Module):
    """Nearest ×``factor`` → 3×3 → pixel attention (x·σ(1×1 x)) → LReLU → 3×3 → LReLU."""

    def __init__(self, cin: int, cout: int, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.up_conv, self.pixel_attention, self.hr_conv = (
            _conv3(cin, cout),
            nn.Conv2d(cout, cout, 1),
            _conv3(cout, cout),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.up_conv(F.interpolate(x, scale_factor=self.factor, mode="nearest"))
        x = F.leaky_relu(x * torch.sigmoid(self.pixel_attention(x)), 0.2)
        return F.leaky_relu(self.hr_conv(x), 0.2)


class A2N(nn.Module):
    def __init__(self, cfg: A2NConfig) -> None:
        super().__init__()
        self.scale = check_scale(cfg.scale, "a2n")
        width, up_width = check_int(cfg.width, "width", "a2n"), check_int(cfg.up_width, "up_width", "a2n")
        self.head = _conv3(3, width)
        blocks = check_int(cfg.blocks, "blocks", "a2n")
        self.body = nn.Sequential(*(_AAB(width, cfg.reduction, cfg.temperature) for _ in range(blocks)))
        self.body_tail = _conv3(width, width)
        factors = (2, 2) if self.scale == 4 else (self.scale,)
        self.up = nn.Sequential(*(_UpStep(width if i == 0 else up_width, up_width, f) for i, f in enumerate(factors)))
        self.tail = _conv3(up_width, 3)

    def forward(self, x: Tensor) -> Tensor:
        features = self.head(x)
        features = features + self.body_tail(self.body(features))
        out = self.tail(self.up(features))  # (N, 3, sH, sW)
        return out + F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


register_sr(
    "a2n",
    A2N,
    A2NConfig(),
    papers=("a2n",),
    params=1_047_000,
    params_source="A2N paper (Chen et al., 2021) Table: ×4 1,047K (×2/×3 1,036K); official haoyuc/A2N aan.py "
    "(nf 40, unf 24, 16 AABs) builds 1,047,459",
    summary="S118 A2N: 16 attention-in-attention blocks (dynamic softmax weights over attention/non-attention)",
    test_cfg={"width": 8, "up_width": 8, "blocks": 2},
)
