"""CFSR (S9): ConvFormer SR network, a large-kernel depthwise mixer in place of self-attention and an
edge-preserving feed-forward network (EFN).

A block is MetaFormer-shaped: ``x + γ₁ · ConvMod(LN(x))`` then ``x + γ₂ · EFN(LN(x))``. ConvMod multiplies a gate
``LK(GELU(1×1 x))`` by a value ``1×1 x`` and projects; its large depthwise kernel (9×9) trains beside a 3×3 depthwise
conv and three per-channel-scaled fixed edge filters (Sobel-x, Sobel-y, Laplacian). EFN is ``1×1 → GELU → h + GELU(DW3
(h) + edges(h)) → 1×1``. ``reparameterize()`` folds every small and edge branch into the one depthwise kernel, the
deploy form whose count the paper publishes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_odd
from convzoo.layers.layer_scale import LayerScale
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.models._sr import DIV2K_MEAN, MeanShift, PixelShuffleTail, check_scale, register_sr

__all__ = ["CFSR", "CFSRConfig", "EdgeDepthwise", "EDGE_FILTERS"]

# Sobel-x, Sobel-y and Laplacian taps (3×3), the fixed edge filters of CFSR's EFN and mixer
EDGE_FILTERS = torch.tensor(
    [
        [[0.0, 1.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]],
        [[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]],
        [[1.0, 0.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]],
    ]
)


@dataclass(frozen=True)
class CFSRConfig:
    scale: int = 4
    width: int = 48
    depths: tuple[int, ...] = (6, 6)
    kernel_size: int = 9
    mlp_ratio: int = 2


class EdgeDepthwise(nn.Module):
    """Depthwise ``k``×``k`` conv + (``k > 3``) a depthwise 3×3 + three fixed edge filters, each scaled per channel.

    All branches are linear and share the input, so :meth:`reparameterize` sums them into the ``k``×``k`` kernel.
    """

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        self.main = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2, groups=channels)
        self.small = nn.Conv2d(channels, channels, 3, padding=1, groups=channels) if kernel_size > 3 else None
        self.edge_scale = nn.Parameter(torch.randn(3, channels) * 1e-3)
        self.edge_bias = nn.Parameter(torch.randn(3, channels) * 1e-3)
        self.register_buffer("edges", EDGE_FILTERS.clone(), persistent=False)
        self.merged = False

    def edge_kernel(self) -> Tensor:
        """The three edge branches as one depthwise 3×3 kernel (C, 1, 3, 3)."""
        return torch.einsum("ec,eij->cij", self.edge_scale, self.edges).unsqueeze(1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.main(x)
        if self.merged:
            return out
        if self.small is not None:
            out = out + self.small(x)
        bias = self.edge_bias.sum(0)
        return out + F.conv2d(x, self.edge_kernel(), bias, padding=1, groups=x.shape[1])

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold the 3×3 and edge branches into ``main`` (centre-padded); exact."""
        if self.merged:
            return
        pad = (self.main.kernel_size[0] - 3) // 2
        small = self.edge_kernel() + (self.small.weight if self.small is not None else 0)
        self.main.weight += F.pad(small, (pad, pad, pad, pad))
        self.main.bias += self.edge_bias.sum(0) + (self.small.bias if self.small is not None else 0)
        self.small, self.edge_scale, self.edge_bias, self.merged = None, None, None, True


class _ConvMod(nn.Module):
    def __init__(self, width: int, kernel_size: int) -> None:
        super().__init__()
        self.norm = LayerNormChannelsFirst(width)
        self.gate_in = nn.Conv2d(width, width, 1)
        self.large = EdgeDepthwise(width, kernel_size)
        self.value = nn.Conv2d(width, width, 1)
        self.proj = nn.Conv2d(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x)
        return self.proj(self.large(F.gelu(self.gate_in(x))) * self.value(x))


class _EFN(nn.Module):
    def __init__(self, width: int, ratio: int) -> None:
        super().__init__()
        hidden = width * ratio
        self.norm = LayerNormChannelsFirst(width)
        self.fc1, self.fc2 = nn.Conv2d(width, hidden, 1), nn.Conv2d(hidden, width, 1)
        self.local = EdgeDepthwise(hidden, 3)

    def forward(self, x: Tensor) -> Tensor:
        hidden = F.gelu(self.fc1(self.norm(x)))
        return self.fc2(hidden + F.gelu(self.local(hidden)))


class _Block(nn.Module):
    def __init__(self, width: int, kernel_size: int, ratio: int) -> None:
        super().__init__()
        self.mixer, self.ffn = _ConvMod(width, kernel_size), _EFN(width, ratio)
        self.scale1, self.scale2 = LayerScale(width, 1e-6), LayerScale(width, 1e-6)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.scale1(self.mixer(x))
        return x + self.scale2(self.ffn(x))


class _Layer(nn.Module):
    def __init__(self, width: int, depth: int, kernel_size: int, ratio: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(_Block(width, kernel_size, ratio) for _ in range(depth)))
        self.conv = nn.Conv2d(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(x)
        return self.conv(x) + x


class CFSR(nn.Module):
    """Mean shift → 3×3 → ConvFormer layers → LN → 3×3 + long skip → pixel-shuffle tail (3×3 conv)."""

    def __init__(self, cfg: CFSRConfig) -> None:
        super().__init__()
        self.scale = check_scale(cfg.scale, "cfsr")
        width = check_int(cfg.width, "width", "cfsr")
        kernel = check_odd(cfg.kernel_size, "kernel_size", "cfsr", low=3)
        ratio = check_int(cfg.mlp_ratio, "mlp_ratio", "cfsr")
        self.sub_mean, self.add_mean = MeanShift(DIV2K_MEAN, -1), MeanShift(DIV2K_MEAN, +1)
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.layers = nn.Sequential(*(_Layer(width, check_int(d, "depths", "cfsr"), kernel, ratio) for d in cfg.depths))
        self.norm = LayerNormChannelsFirst(width)
        self.body_tail = nn.Conv2d(width, width, 3, padding=1)
        self.upsample = PixelShuffleTail(width, 3, self.scale)

    def forward(self, x: Tensor) -> Tensor:
        features = self.head(self.sub_mean(x))
        features = self.body_tail(self.norm(self.layers(features))) + features
        return self.add_mean(self.upsample(features))  # (N, 3, sH, sW)


register_sr(
    "cfsr",
    CFSR,
    CFSRConfig(),
    papers=("cfsr",),
    params=307_000,
    params_source="CFSR paper (Wu et al., IEEE TIP 2024) and Aitical/CFSR README ×4 table: 307K, the deploy form "
    "(options/test_CFSR_SRx4.yml: 48 channels, depths 6/6, 9×9 mixer, MLP ratio 2); after reparameterize this counts "
    "306,912",
    summary="S9 CFSR: ConvFormer blocks (9×9 depthwise mixer with edge branches, edge-preserving FFN), 48 channels",
    test_cfg={"width": 8, "depths": (1, 1), "kernel_size": 5},
)
