"""Circular-convolutional attention (S69, CAT): a softmax-weighted circulant token mixer applied by FFT."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.ops._layout import is_channels_last
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["CATAttention", "circular_attention"]


def circular_attention(weights: Tensor, values: Tensor) -> Tensor:
    """``out[..., i, :] = Σ_j weights[..., (j - i) mod T] values[..., j, :]``, by FFT in O(T log T).

    ``weights`` is ``(N, h, T)`` (each row of the circulant ``Roll(z*)`` is ``z*`` shifted by its index), ``values``
    ``(N, h, T, d)``. The sum is the circular cross-correlation ``IFFT(conj(FFT(z*)) · FFT(V))`` along tokens.
    """
    dtype = values.dtype if values.dtype in (torch.float32, torch.float64) else torch.float32  # no half FFT on CPU
    tokens = values.shape[-2]
    weights_f = torch.fft.rfft(weights.to(dtype), dim=-1)  # (N, h, T // 2 + 1)
    values_f = torch.fft.rfft(values.to(dtype), dim=-2)  # (N, h, T // 2 + 1, d)
    out = torch.fft.irfft(weights_f.conj()[..., None] * values_f, n=tokens, dim=-2)  # (N, h, T, d)
    return out.to(values.dtype)


@OPS.register("cat_attention", kind="attention", dims=(1, 2, 3), papers=("cat-attention",), dynamic=True)
class CATAttention(Op):
    """S69 CAT: Circular-Convolutional Attention for Sub-Quadratic Transformers.

    Input ``(N, C, *S)`` → same shape; the ``T = ΠS`` positions are tokens. Per head ``h``: one score per token
    ``z = x W_A`` (``W_A`` : C → heads merges the query and key projections), ``z* = softmax_T(z)``, and the
    attention matrix is the circulant ``A[i, j] = z*[(j - i) mod T]``, so ``out = proj(A V)`` with ``V = x W_V``
    (C → C, split into heads) costs O(T log T) by FFT (:func:`circular_attention`) instead of O(T²). Each row of
    ``A`` sums to 1 like softmax attention. ``bias`` is the output projection's; ``W_A`` and ``W_V`` have none
    (``qkv_bias=False``). Not causal: token ``i`` mixes every token (the circulant wraps around), so it is
    registered as an ``attention`` op (C → C token mixing) rather than a causal ``sequence`` op. Stride 1 only;
    ``kernel_size`` is unused (the mixer is global).
    """

    same_channels = True
    odd_kernel = False
    max_stride = 1

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 1,
        stride: int | Sequence[int] = 1,
        *,
        dim: int = 2,
        bias: bool = True,
        heads: int = 8,
        qkv_bias: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if in_channels % check_int(heads, "heads", name):
            raise ValueError(f"{name}: heads must be a positive int dividing in_channels={in_channels}, got {heads!r}")
        self.heads = heads
        self.score = nn.Linear(in_channels, heads, bias=qkv_bias)  # W_A
        self.value = nn.Linear(in_channels, in_channels, bias=qkv_bias)  # W_V
        self.proj = nn.Linear(in_channels, in_channels, bias=bias)

    def attention_weights(self, tokens: Tensor) -> Tensor:
        """``z* = softmax_T(x W_A)``: ``(N, heads, T)`` for tokens ``(N, T, C)``."""
        return self.score(tokens).softmax(dim=1).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        batch, channels, *spatial = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (N, T, C)
        count = tokens.shape[1]
        weights = self.attention_weights(tokens)  # (N, h, T)
        values = (
            self.value(tokens).view(batch, count, self.heads, channels // self.heads).transpose(1, 2)
        )  # (N, h, T, d)
        mixed = circular_attention(weights, values).transpose(1, 2).reshape(batch, count, channels)  # (N, T, C)
        if is_channels_last(x):
            out = self.proj(mixed).transpose(1, 2)  # (N, C, T), channels innermost like x
        else:
            # the projection as W · mixedᵀ writes (N, C, T) contiguous, like x, without a transposing copy
            out = torch.matmul(self.proj.weight, mixed.transpose(1, 2))  # (N, C, T)
            if self.proj.bias is not None:
                out = out + self.proj.bias.unsqueeze(-1)
        return out.reshape(batch, channels, *spatial)  # (N, C, *S), a view

    def macs(self, input_size: Sequence[int]) -> int:
        """Per sample: the projections, T·C·(heads + 2C), plus an estimate of the FFT part the flop counter
        cannot see: forward FFTs of V and z* and the inverse FFT (≈ T log2 T each per channel or head) and
        T/2 + 1 complex products (4 MACs) per value channel."""
        count = math.prod(input_size)
        channels = self.in_channels
        fft = max(1, int(math.log2(max(count, 2)))) * count
        projections = count * channels * (self.heads + 2 * channels)
        return projections + (2 * channels + self.heads) * fft + 4 * channels * (count // 2 + 1)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, heads={self.heads}, dim={self.dim}, circulant via FFT"
