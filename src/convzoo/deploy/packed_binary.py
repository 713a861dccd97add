"""``PackedBinaryConv``: the deploy form of the S8 binary convolution, one bit per weight.

It runs the bit-packed kernels of :mod:`convzoo.kernels` (native C++ when built, pure PyTorch otherwise);
:func:`convzoo.deploy.binarize.binarize` puts it in place of every :class:`~convzoo.ops.binary.BinaryConv`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.deploy.fuse_bn import bn_scale_shift
from convzoo.kernels import binary_native
from convzoo.kernels.binary_packed import WORD_BITS, pack_bits, packed_conv, unpack_bits
from convzoo.ops.binary import MODES, BinaryConv, scaling_map, weight_scale

__all__ = ["PackedBinaryConv"]


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
            scale, shift = bn_scale_shift(bn)
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
