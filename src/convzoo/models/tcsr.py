"""TCSR (S7): neighbourhood attention (NA) in place of large kernels, and the shift-based enhanced FFN (EFFN).

NA: every pixel attends, per head, to the ``w``×``w`` window centred on it (positions outside the image are masked
out), which equals full self-attention restricted by a window mask (tested); cost ``O(HW · w²)`` instead of
``O(H²W²)``. EFFN is ``1×1 → shift (four channel groups moved ±1 px along each axis) → GELU → 1×1``. The block is
``x + NA(LN(x))`` then ``x + EFFN(LN(x))``; groups of blocks close with a 3×3 conv and a residual, as in
lightweight transformer SR. The official code was not available to check the layout or its count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_odd
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.models._sr import MeanShift, PixelShuffleTail, check_scale, register_sr
from convzoo.ops.shift import shift_offsets, spatial_shift

__all__ = ["TCSR", "TCSRConfig", "neighbourhood_attention", "window_mask"]


@dataclass(frozen=True)
class TCSRConfig:
    scale: int = 4
    width: int = 48
    groups: int = 4
    depth: int = 4
    heads: int = 4
    window: int = 7
    ffn_ratio: int = 2


def neighbourhood_attention(q: Tensor, k: Tensor, v: Tensor, window: int) -> Tensor:
    """Softmax attention of each pixel over its ``window``×``window`` neighbourhood (zero-padded positions excluded).

    ``q``, ``k``, ``v``: (N, heads, d, H, W) → (N, heads, d, H, W); ``q`` is expected pre-scaled.
    """
    n, heads, d, h, w = q.shape
    pad = window // 2

    def windows(t: Tensor) -> Tensor:
        cols = F.unfold(t.reshape(n * heads, -1, h, w), window, padding=pad)  # (N·heads, c·w², HW)
        return cols.view(n, heads, -1, window * window, h * w)  # (N, heads, c, w², HW)

    keys, values = windows(k), windows(v)
    inside = windows(q.new_ones(n, heads, 1, h, w))[:, :, 0] > 0  # (N, heads, w², HW)
    # products and sums rather than einsum: einsum routes these through batched matmuls of permuted copies of the
    # unfolded keys and values, 2.7× slower forward + backward at TCSR's ×2 training shape (1 thread)
    logits = (q.flatten(3).unsqueeze(3) * keys).sum(2)  # (N, heads, w², HW)
    weights = logits.masked_fill(~inside, float("-inf")).softmax(dim=2)
    return (weights.unsqueeze(2) * values).sum(3).view(n, heads, d, h, w)


def window_mask(h: int, w: int, window: int) -> Tensor:
    """(HW, HW) boolean: pixel ``i`` may attend to pixel ``j`` when both offsets are within ``window // 2``."""
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    rows, cols = rows.flatten(), cols.flatten()
    r = window // 2
    return ((rows[:, None] - rows[None]).abs() <= r) & ((cols[:, None] - cols[None]).abs() <= r)


class _NA(nn.Module):
    def __init__(self, width: int, heads: int, window: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"tcsr: width must be divisible by heads, got width={width}, heads={heads}")
        self.heads, self.window = heads, window
        self.qkv, self.proj = nn.Conv2d(width, 3 * width, 1), nn.Conv2d(width, width, 1)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(x).view(n, 3, self.heads, c // self.heads, h, w).unbind(1)  # each (N, heads, d, H, W)
        out = neighbourhood_attention(q * (c // self.heads) ** -0.5, k, v, self.window)
        return self.proj(out.reshape(n, c, h, w))


class _EFFN(nn.Module):
    def __init__(self, width: int, ratio: int) -> None:
        super().__init__()
        hidden = width * ratio
        self.fc1, self.fc2 = nn.Conv2d(width, hidden, 1), nn.Conv2d(hidden, width, 1)
        self.offsets = shift_offsets(2, "axial")

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(spatial_shift(self.fc1(x), self.offsets, (1, 1), (1, 1))))


class _Block(nn.Module):
    def __init__(self, cfg: TCSRConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = LayerNormChannelsFirst(cfg.width), LayerNormChannelsFirst(cfg.width)
        self.attention, self.ffn = _NA(cfg.width, cfg.heads, cfg.window), _EFFN(cfg.width, cfg.ffn_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class _Group(nn.Module):
    def __init__(self, cfg: TCSRConfig) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*(_Block(cfg) for _ in range(cfg.depth)))
        self.conv = nn.Conv2d(cfg.width, cfg.width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(self.blocks(x))


class TCSR(nn.Module):
    def __init__(self, cfg: TCSRConfig) -> None:
        super().__init__()
        self.scale = check_scale(cfg.scale, "tcsr")
        for what in ("width", "groups", "depth", "heads", "ffn_ratio"):
            check_int(getattr(cfg, what), what, "tcsr")
        check_odd(cfg.window, "window", "tcsr", low=3)
        self.sub_mean, self.add_mean = MeanShift(sign=-1), MeanShift(sign=+1)
        self.head = nn.Conv2d(3, cfg.width, 3, padding=1)
        self.body = nn.Sequential(*(_Group(cfg) for _ in range(cfg.groups)))
        self.body_tail = nn.Conv2d(cfg.width, cfg.width, 3, padding=1)
        self.upsample = PixelShuffleTail(cfg.width, 3, self.scale)

    def forward(self, x: Tensor) -> Tensor:
        features = self.head(self.sub_mean(x))
        features = features + self.body_tail(self.body(features))
        return self.add_mean(self.upsample(features))  # (N, 3, sH, sW)


register_sr(
    "tcsr",
    TCSR,
    TCSRConfig(),
    papers=("tcsr",),
    params=None,
    params_source="no count matched: the official Aitical/TCSR repository holds no code to check, and this layout "
    "(48 channels, 4 groups × 4 NA blocks, 7×7 windows, EFFN ratio 2) is read from the abstract, not the paper's table",
    summary="S7 TCSR: neighbourhood-attention blocks (7×7 windows) with the shift-based EFFN, pixel-shuffle tail",
    test_cfg={"width": 8, "groups": 1, "depth": 1, "heads": 2, "window": 3},
)
