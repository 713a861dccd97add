"""Bit-packed inference form of the S8 binary convolution, in pure PyTorch ("packed-torch").

Signs are packed along channels into int64 words, bit ``b`` of word ``w`` holding channel ``64 w + b``
(1 for +1, i.e. ``x >= 0``; 0 for -1). Per output position and output channel the binary dot product is

    dot = valid_bits - 2 · popcount(a XOR w),    valid_bits = C_in · (number of in-bounds taps),

where padded spatial positions are excluded from both terms by a validity mask (a padded zero is neither
+1 nor -1, as in :mod:`convzoo.ops.binary`), and the bits beyond ``C_in`` in the last word are 0 in both
``a`` and ``w``, so they XOR to 0 and are not counted in ``valid_bits``. The integer result is then scaled
by α (per output channel) and, in xnor mode, by the K map. :func:`packed_conv` is the one function the native
kernel (:mod:`convzoo.ops.binary_native`) replaces; :class:`PackedBinaryConv` runs that kernel when it is built
and the input is float32 on the CPU, and this module's pure-PyTorch path otherwise. Both give the same integers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.ops import binary_native
from convzoo.ops.base import conv_nd, same_padding
from convzoo.ops.binary import MODES, BinaryConv, scaling_map, weight_scale

__all__ = ["PackedBinaryConv", "pack_bits", "unpack_bits", "popcount", "packed_conv", "WORD_BITS"]

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


class PackedBinaryConv(nn.Module):
    """Inference form of :class:`BinaryConv`: one bit per weight (int64 words) plus float α and bias.

    State: ``weight_words (C_out, *k, ceil(C_in / 64))`` int64, ``alpha (C_out,)``, ``bias (C_out,)`` or none.
    ``xnor``: integer binary convolution of the packed input signs, scaled by α and K, run by the native kernel
    (``path=native-<isa>``: packing, XOR/popcount and scaling in C++) when it is available, the input float32
    on the CPU and ``use_native`` is true, else by :func:`packed_conv` (``path=packed-torch``). ``bwn``: the
    input is float, so the bits are unpacked to ``α · sign(W)`` and convolved in float (``path=unpacked-float``).
    """

    use_native: bool = True  # set False on an instance to force the pure-PyTorch path

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Sequence[int],
        stride: Sequence[int],
        *,
        mode: str = "xnor",
        bias: bool = False,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"binary: mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.mode = tuple(kernel_size), tuple(stride), mode
        words = -(-in_channels // WORD_BITS)
        self.register_buffer("weight_words", torch.zeros(out_channels, *self.kernel_size, words, dtype=torch.int64))
        self.register_buffer("alpha", torch.ones(out_channels))
        self.register_buffer("bias", torch.zeros(out_channels) if bias else None)
        # a BatchNorm folded into the input (fold_input_bn): y = x · input_scale + input_shift per input channel
        self.register_buffer("input_scale", None)
        self.register_buffer("input_shift", None)

    @classmethod
    def from_binary(cls, op: BinaryConv) -> PackedBinaryConv:
        """Pack a trained :class:`BinaryConv` (its α, signs and bias; the float weights are dropped)."""
        packed = cls(op.in_channels, op.out_channels, op.kernel_size, op.stride, mode=op.mode, bias=op.bias is not None)
        with torch.no_grad():
            weight = op.weight.detach()
            packed.weight_words.copy_(pack_bits(weight))  # (C_out, *k, W)
            packed.alpha.copy_(weight_scale(weight).flatten())
            if op.bias is not None:
                packed.bias.copy_(op.bias.detach())
        return packed

    def fold_input_bn(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        """Take over an eval-mode BatchNorm that feeds this conv and nothing else (S8's BN → BinActiv → BinConv):
        the input is binarised (and K computed) from ``x · s + t``, ``s = γ / sqrt(σ² + ε)``, ``t = β − μ s``, in
        the packing pass, so the BN's own pass over the activations disappears. Only for ``xnor`` mode."""
        if self.mode != "xnor":
            raise ValueError(f"binary packed: only mode='xnor' folds an input BatchNorm, this conv is {self.mode!r}")
        if bn.num_features != self.in_channels or bn.running_mean is None:
            raise ValueError(
                f"binary packed: expected a BatchNorm with running stats over {self.in_channels} channels, got {bn}"
            )
        with torch.no_grad():
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            shift = -bn.running_mean * scale
            if bn.bias is not None:
                shift = shift + bn.bias
        self.input_scale, self.input_shift = scale.detach().float().clone(), shift.detach().float().clone()

    def binary_weight(self, dtype: torch.dtype = torch.float32) -> Tensor:
        """``α · sign(W)`` as a float tensor ``(C_out, C_in, *k)``."""
        signs = unpack_bits(self.weight_words, self.in_channels, dtype)  # (C_out, C_in, *k)
        return signs * self.alpha.to(dtype).view(-1, *([1] * (signs.dim() - 1)))

    def _prepared_weights(self) -> tuple[Tensor, Tensor]:
        """The native kernel's layout of ``weight_words``, made once and again only when the words change."""
        words = self.weight_words
        key = (words.data_ptr(), words._version, tuple(words.shape))
        cached = self.__dict__.get("_prepared")
        if cached is None or cached[0] != key:
            cached = self.__dict__["_prepared"] = (key, binary_native.prepare(words))
        return cached[1]

    @property
    def path(self) -> str:
        """Which implementation runs float32 CPU inputs: ``native-<isa>``, ``packed-torch`` or ``unpacked-float``."""
        if self.mode == "bwn":
            return "unpacked-float"
        if self.use_native and binary_native.available():
            return f"native-{binary_native.isa()}"
        return "packed-torch"

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != len(self.kernel_size) + 2 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"binary packed: expected input (N, {self.in_channels}, {len(self.kernel_size)} spatial dims), "
                f"got {tuple(x.shape)}"
            )
        if x.requires_grad and torch.is_grad_enabled():
            raise RuntimeError(
                "binary packed: an inference form, through which no gradient flows; got an input that requires grad "
                "(train the 'binary' op, then binarize; or call under torch.no_grad())"
            )
        if self.mode == "xnor" and x.dtype == torch.float32 and x.device.type == "cpu" and self.path != "packed-torch":
            words, mean_abs = binary_native.pack(x, self.input_scale, self.input_shift)  # (N, *S, W), (N, 1, *S)
            scale = binary_native.window_mean(mean_abs, self.kernel_size, self.stride)  # K: (N, 1, *out)
            return binary_native.conv(
                words,
                self.weight_words,
                self.in_channels,
                self.stride,
                alpha=self.alpha,
                scale=scale,
                bias=self.bias,
                prepared=self._prepared_weights(),
            )
        shape = (1, -1, *([1] * len(self.kernel_size)))  # (1, C_out, *1)
        if self.input_scale is not None:  # the folded BN, rounded as the native packing rounds it
            x = x * self.input_scale.to(x.dtype).view(shape) + self.input_shift.to(x.dtype).view(shape)
        alpha = self.alpha.to(x.dtype).view(shape)
        if self.mode == "bwn":
            signs = unpack_bits(self.weight_words, self.in_channels, x.dtype)  # (C_out, C_in, *k)
            out = conv_nd(x, signs, stride=self.stride, padding=same_padding(self.kernel_size)) * alpha
        else:
            dots = packed_conv(pack_bits(x), self.weight_words, self.in_channels, x.shape[2:], self.stride)
            out = dots.to(x.dtype) * alpha * scaling_map(x, self.kernel_size, self.stride)
        return out if self.bias is None else out + self.bias.to(x.dtype).view(shape)

    def macs(self, input_size: Sequence[int]) -> int:
        """Per sample: the equivalent conv's multiply-accumulates, C_out · C_in · k^d per output position (1-bit
        XNOR/popcount operations in xnor mode, float ones in bwn mode), plus the K map's k^d per position."""
        positions = math.prod(-(-s // st) for s, st in zip(input_size, self.stride, strict=True))
        taps = math.prod(self.kernel_size)
        k_map = taps * positions if self.mode == "xnor" else 0
        return self.out_channels * self.in_channels * taps * positions + k_map

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"mode={self.mode}, bias={self.bias is not None}, input_bn={self.input_scale is not None}, path={self.path}"
        )
