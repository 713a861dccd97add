"""Bit-packed inference form of the S8 binary convolution, in pure PyTorch ("packed-torch").

Signs are packed along channels into int64 words, bit ``b`` of word ``w`` holding channel ``64 w + b``
(1 for +1, i.e. ``x >= 0``; 0 for -1). Per output position and output channel the binary dot product is

    dot = valid_bits - 2 · popcount(a XOR w),    valid_bits = C_in · (number of in-bounds taps),

where padded spatial positions are excluded from both terms by a validity mask (a padded zero is neither
+1 nor -1, as in :mod:`convzoo.ops.binary`), and the bits beyond ``C_in`` in the last word are 0 in both
``a`` and ``w``, so they XOR to 0 and are not counted in ``valid_bits``. The integer result is then scaled
by α (per output channel) and, in xnor mode, by the K map. :func:`packed_conv` is the one function the native
kernel (:mod:`convzoo.kernels.binary_native`) replaces; :class:`convzoo.deploy.packed_binary.PackedBinaryConv`
runs that kernel when it is built and the input is float32 on the CPU, and this module's pure-PyTorch path
otherwise. Both give the same integers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from convzoo.core.conv import same_padding

__all__ = ["pack_bits", "unpack_bits", "popcount", "packed_conv", "WORD_BITS"]

WORD_BITS = 64
_M1, _M2, _M4, _H01 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101


def pack_bits(x: Tensor) -> Tensor:
    """Signs of ``x (N, C, *S)`` packed along C: ``(N, *S, ceil(C / 64))`` int64 (bit set where ``x >= 0``)."""
    channels = x.shape[1]
    words = -(-channels // WORD_BITS)
    bits = (x >= 0).movedim(1, -1).to(torch.int64)  # (N, *S, C)
    bits = F.pad(bits, (0, words * WORD_BITS - channels))  # (N, *S, 64 W): the extra bits are 0
    bits = bits.reshape(*bits.shape[:-1], words, WORD_BITS)  # (N, *S, W, 64)
    shifts = torch.arange(WORD_BITS, device=x.device, dtype=torch.int64)
    # distinct powers of two: the sum never carries, so bit 63 (the int64 sign bit) packs exactly
    return (bits << shifts).sum(dim=-1)  # (N, *S, W)


def unpack_bits(words: Tensor, channels: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Inverse of :func:`pack_bits` to ±1: ``(N, *S, W)`` int64 → ``(N, channels, *S)`` of ``dtype``."""
    shifts = torch.arange(WORD_BITS, device=words.device, dtype=torch.int64)
    bits = (words.unsqueeze(-1) >> shifts) & 1  # (N, *S, W, 64)
    bits = bits.flatten(-2)[..., :channels]  # (N, *S, C)
    return (bits.to(dtype) * 2 - 1).movedim(-1, 1)  # (N, C, *S)


def popcount(words: Tensor) -> Tensor:
    """Set bits of each int64 (SWAR bit tricks; ``>>`` is arithmetic, so each shift is masked)."""
    x = words - ((words >> 1) & _M1)
    x = (x & _M2) + ((x >> 2) & _M2)
    x = (x + (x >> 4)) & _M4
    return (x * _H01) >> 56  # the top byte holds the count (≤ 64, so the sign bit stays 0)


def packed_conv(
    x_words: Tensor, w_words: Tensor, in_channels: int, spatial: Sequence[int], stride: Sequence[int]
) -> Tensor:
    """Integer binary convolution: ``x_words (N, *S, W)``, ``w_words (C_out, *k, W)`` → ``(N, C_out, *out)`` int64.

    Each entry is Σ over in-bounds taps and channels of sign(x)·sign(w) = valid_bits - 2·popcount(a XOR w).
    A native kernel replaces this function (same arguments, same result).
    """
    kernel_size = tuple(w_words.shape[1:-1])
    padding = same_padding(kernel_size)
    out_size = tuple(-(-s // st) for s, st in zip(spatial, stride, strict=True))
    pad = [p for pd in reversed(padding) for p in (pd, pd)]
    words = F.pad(x_words.movedim(-1, 1), pad).movedim(1, -1)  # (N, *(S + 2p), W): padded words are excluded
    valid = F.pad(torch.ones(spatial, dtype=torch.int64, device=x_words.device), pad)  # (*(S + 2p))
    n = x_words.shape[0]
    mismatches = torch.zeros(n, *out_size, w_words.shape[0], dtype=torch.int64, device=x_words.device)
    valid_taps = torch.zeros(out_size, dtype=torch.int64, device=x_words.device)
    for tap in itertools.product(*(range(k) for k in kernel_size)):
        window = tuple(slice(t, t + (o - 1) * st + 1, st) for t, o, st in zip(tap, out_size, stride, strict=True))
        mask = valid[window]  # (*out)
        a = words[(slice(None), *window)]  # (N, *out, W)
        w = w_words[(slice(None), *tap)]  # (C_out, W)
        count = popcount(a.unsqueeze(-2) ^ w).sum(dim=-1)  # (N, *out, C_out)
        mismatches += count * mask.unsqueeze(-1)
        valid_taps += mask
    dots = valid_taps.unsqueeze(-1) * in_channels - 2 * mismatches  # (N, *out, C_out)
    return dots.movedim(-1, 1)  # (N, C_out, *out)
