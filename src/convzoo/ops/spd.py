"""SPD-Conv (S95): space-to-depth by the stride, then a non-strided conv — downsampling that discards nothing."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.ops._layout import empty
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["SPDConv", "space_to_depth_like"]


def space_to_depth_like(x: Tensor, scale: int) -> Tensor:
    """:func:`convzoo.layers.space_to_depth.space_to_depth` written in ``x``'s memory format.

    ``(N, C, *S) → (N, C·scale^d, *S/scale)``, channel ``c·scale^d + flat(offsets)``. The fold moves every element,
    so it is one copy either way; the layer's ``reshape`` writes that copy contiguous, this one writes it into a
    tensor laid out like ``x`` (channels-last for a channels-last input). Every size must be divisible by ``scale``.
    """
    n, c, *size = x.shape
    dim = len(size)
    out = empty((n, c * scale**dim, *(s // scale for s in size)), like=x)  # (N, C·r^d, *S/r)
    blocks = x.reshape(n, c, *[v for s in size for v in (s // scale, scale)])  # (N, C, S0/r, r, S1/r, r, ...), a view
    blocks = blocks.permute(0, 1, *range(3, 2 + 2 * dim, 2), *range(2, 2 + 2 * dim, 2))  # (N, C, r, ..., S0/r, ...)
    out.unflatten(1, (c, *[scale] * dim)).copy_(blocks)  # out viewed as (N, C, r, ..., S0/r, ...)
    return out


@OPS.register("spd", kind="grid", dims=(1, 2, 3), papers=("spd-conv",), linear=True)
class SPDConv(Op):
    """SPD-Conv (S95): space-to-depth with scale = stride, then a stride-1 conv on C_in·stride^d channels.

    Replaces a strided conv or a pooling layer: every input pixel reaches the conv. A spatial size
    that is not a multiple of the stride is zero-padded at the end first, giving ``ceil(S / stride)``
    outputs. The stride must be the same along every axis (one scale); stride 1 is a plain conv.

    The whole operator is linear and equals one conv on the original grid with stride s, kernel
    ``s·(k + 1) − 1`` and padding ``s·(k + 1)/2 − 1`` per axis (``dense_kernel``): the conv tap
    ``δ`` on sub-pixel ``a`` lands at original offset ``s·δ + a + s − 1``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        if len(set(self.stride)) != 1:
            raise ValueError(f"spd: space-to-depth needs one scale for every axis, got stride={stride!r}")
        self.scale = self.stride[0]
        self.weight, self.bias = conv_weight(out_channels, in_channels * self.scale**dim, self.kernel_size, bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        s = self.scale
        pad = [p for size in reversed(x.shape[2:]) for p in (0, -size % s)]
        folded = space_to_depth_like(F.pad(x, pad), s)  # (N, C·s^d, *ceil(S / s)), in x's memory format
        return conv_nd(folded, self.weight, self.bias, padding=same_padding(self.kernel_size))

    def dense_kernel(self) -> ConvSpec:
        s, d = self.scale, self.dim
        w = self.weight.detach()
        # (C_out, C_in, s, .., s, k_1, .., k_d): space_to_depth puts sub-pixel offsets after the channel
        w = w.reshape(self.out_channels, self.in_channels, *([s] * d), *self.kernel_size)
        order = [p for i in range(d) for p in (2 + d + i, 2 + i)]
        w = w.permute(0, 1, *order)  # (C_out, C_in, k_1, s, k_2, s, ..)
        w = w.reshape(self.out_channels, self.in_channels, *(k * s for k in self.kernel_size))  # tap δ·s + a
        w = F.pad(w, [p for _ in range(d) for p in (s - 1, 0)])  # shift taps by s − 1: centred, odd size
        padding = tuple(s * (k + 1) // 2 - 1 for k in self.kernel_size)
        bias = None if self.bias is None else self.bias.detach().clone()
        return ConvSpec(w, bias, self.stride, padding, (1,) * d)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scale={self.scale}"
