"""Shifted-window multi-head self-attention (Swin Transformer, Liu et al. 2021; ESC S50's encoder/decoder mixer).

:class:`ShiftedWindowAttention` maps a grid of tokens ``(N, H, W, C)`` → ``(N, H, W, C)``. The grid is zero-padded
at the bottom/right to multiples of ``window_size`` (``Hp × Wp``), rolled by ``(−shift, −shift)`` when
``shift > 0``, cut into non-overlapping ``window_size × window_size`` windows, and every window attends within
itself: ``softmax(q kᵀ · d^-½ + B + M) v`` per head, with ``B`` a learned relative-position bias (one entry per
offset ``(Δh, Δw) ∈ (−w, w)²`` and head, table ``((2w − 1)², heads)``) and, for shifted windows, ``M`` = −∞
between tokens that came from different regions of the padded grid before the roll (the Swin mask: rows and
columns split at ``Hp − w`` and ``Hp − shift``). The windows are rolled back and the padding cropped. Padded
tokens take part as keys, as in Swin. Swin writes the mask as −100; −∞ is the same up to ``e^-100``.

:func:`window_partition` / :func:`window_reverse` are the reshapes, :func:`shifted_window_mask` the mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.registry import LAYERS

__all__ = ["ShiftedWindowAttention", "shifted_window_mask", "window_partition", "window_reverse"]


def window_partition(x: Tensor, window: int) -> Tensor:
    """``(N, H, W, C)`` (``H``, ``W`` multiples of ``window``) → windows ``(N · H/w · W/w, w · w, C)``."""
    n, h, w, c = x.shape
    x = x.view(n, h // window, window, w // window, window, c)  # (N, H/w, w, W/w, w, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)  # (N·nW, w·w, C)


def window_reverse(windows: Tensor, window: int, h: int, w: int) -> Tensor:
    """Windows ``(N · H/w · W/w, w · w, C)`` → ``(N, H, W, C)``; inverse of :func:`window_partition`."""
    c = windows.shape[-1]
    x = windows.view(-1, h // window, w // window, window, window, c)  # (N, H/w, W/w, w, w, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int, device: torch.device | None = None) -> Tensor:
    """Additive mask ``(H/w · W/w, w · w, w · w)`` of 0 / −∞ for the windows of an ``H × W`` grid rolled by
    ``−shift``: tokens of one window may attend to each other only if they share a region label."""
    labels = torch.zeros(h, w, device=device)
    cuts = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(cuts):
        for j, cols in enumerate(cuts):
            labels[rows, cols] = 3 * i + j
    windows = window_partition(labels[None, :, :, None], window).squeeze(-1)  # (nW, w·w)
    different = windows[:, None, :] != windows[:, :, None]  # (nW, w·w, w·w)
    return torch.zeros(different.shape, device=device).masked_fill(different, float("-inf"))


@LAYERS.register("shifted_window_attention", kind="layer", dims=(2,), papers=("esc-codec",))
class ShiftedWindowAttention(nn.Module):
    """(Shifted-)window multi-head self-attention with relative-position bias on ``(N, H, W, C)`` tokens (Swin).

    ``dim`` channels, ``num_heads`` heads of width ``dim // num_heads``, square windows of ``window_size``,
    cyclic shift ``shift`` (0 ≤ shift < window_size; Swin alternates 0 and ``window_size // 2``). Parameters:
    ``qkv`` Linear ``C → 3C`` (bias ``qkv_bias``), ``proj`` Linear ``C → C``, ``relative_position_bias_table``
    ``((2w − 1)², heads)`` (truncated normal, std 0.02).
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 4, shift: int = 0, *, qkv_bias: bool = True):
        super().__init__()
        owner = "shifted_window_attention"
        self.dim = check_int(dim, "dim", owner)
        self.num_heads = check_int(num_heads, "num_heads", owner)
        if dim % num_heads:
            raise ValueError(f"{owner}: num_heads must divide dim {dim}, got {num_heads}")
        self.window_size = check_int(window_size, "window_size", owner)
        self.shift = check_int(shift, "shift", owner, low=0, high=window_size - 1)
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        span = 2 * window_size - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(span * span, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(
            torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
        ).flatten(1)  # (2, w·w)
        offset = coords[:, :, None] - coords[:, None, :] + window_size - 1  # (2, w·w, w·w), each in [0, 2w − 2]
        self.register_buffer("relative_position_index", offset[0] * span + offset[1], persistent=False)

    def relative_position_bias(self) -> Tensor:
        """The bias ``B`` ``(heads, w · w, w · w)`` of one window."""
        length = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.reshape(-1)]  # (w·w·w·w, heads)
        return bias.view(length, length, self.num_heads).permute(2, 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[-1] != self.dim:
            raise ValueError(f"shifted_window_attention: expected (N, H, W, {self.dim}) tokens, got {tuple(x.shape)}")
        n, h, w, c = x.shape
        win = self.window_size
        x = F.pad(x, (0, 0, 0, (-w) % win, 0, (-h) % win))  # (N, Hp, Wp, C)
        hp, wp = x.shape[1], x.shape[2]
        if self.shift:
            x = torch.roll(x, (-self.shift, -self.shift), dims=(1, 2))
        windows = window_partition(x, win)  # (N·nW, w·w, C)
        q, k, v = self.qkv(windows).view(windows.shape[0], win * win, 3, self.num_heads, c // self.num_heads).unbind(2)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # each (N·nW, heads, w·w, d)
        bias = self.relative_position_bias().to(x.dtype)[None]  # (1, heads, w·w, w·w)
        if self.shift:
            mask = shifted_window_mask(hp, wp, win, self.shift, x.device).to(x.dtype)  # (nW, w·w, w·w)
            bias = (bias + mask[:, None]).repeat(n, 1, 1, 1)  # (N·nW, heads, w·w, w·w)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)  # (N·nW, heads, w·w, d)
        y = self.proj(y.transpose(1, 2).reshape(-1, win * win, c))  # (N·nW, w·w, C)
        y = window_reverse(y, win, hp, wp)  # (N, Hp, Wp, C)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        return y[:, :h, :w]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, window_size={self.window_size}, shift={self.shift}"
