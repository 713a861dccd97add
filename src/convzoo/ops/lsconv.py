"""LSNet's LS convolution: large-kernel perception produces small-kernel dynamic aggregation weights (N-d)."""

from __future__ import annotations

import itertools
import math

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_int, is_int
from convzoo.kernels.large_kernel import depthwise_conv
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["LSConv", "small_kernel_aggregation"]

_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def small_kernel_aggregation(x: Tensor, weights: Tensor, kernel_size: int, stride: tuple[int, ...]) -> Tensor:
    """LSNet's SKA: per-pixel, per-channel-group small kernels applied to ``x``.

    ``x`` is ``(N, C, *S)``; ``weights`` ``(N, W, k^d, *S')`` with ``W`` dividing ``C`` and ``S' = ceil(S / stride)``.
    ``out[n, c, p] = Σ_t x[n, c, stride·p + t − k//2] · weights[n, c mod W, t, p]`` over the ``k^d`` taps ``t``
    (zero outside the map): channel c uses weight channel ``c mod W``, as in the official kernel.
    """
    dim = x.dim() - 2
    batch, channels = x.shape[:2]
    groups = weights.shape[1]
    out_size = weights.shape[3:]
    padded = F.pad(x, [kernel_size // 2] * (2 * dim))  # (N, C, *(S + k − 1))
    padded = padded.view(batch, channels // groups, groups, *padded.shape[2:])  # (N, C / W, W, *S_pad)
    out = 0
    for tap, offset in enumerate(itertools.product(range(kernel_size), repeat=dim)):
        window = tuple(slice(o, o + (n - 1) * s + 1, s) for o, n, s in zip(offset, out_size, stride, strict=True))
        out = out + padded[(..., *window)] * weights[:, None, :, tap]  # (N, C / W, W, *S')
    return out.reshape(batch, channels, *out_size)  # (N, C, *S')


@OPS.register("ls", kind="grid", dims=(1, 2, 3), papers=("lsnet",), linear=False)
class LSConv(Op):
    """LSNet (S6), "See Large, Focus Small": LS convolution = large-kernel perception + small-kernel aggregation.

    Input ``(N, C, *S)`` → output ``(N, C, *ceil(S / stride))``. As ``LSConv`` in THU-MIG/lsnet
    (``model/lsnet.py``, ``LKP`` + ``SKA``)::

        h = ReLU(BN(PW(x)))                            # C → C/2
        h = ReLU(BN(PW(BN(DW_K(h)))))                  # the large K^d depthwise kernel ("see large")
        w = GroupNorm_{C/G}(PW(h)) → (N, C/G, k^d, *S)  # C/2 → k^d · C/G, with bias
        y = BN(SKA(x, w)) + x                          # per-pixel k^d kernels ("focus small")

    :func:`small_kernel_aggregation` gives channel c the dynamic kernel of weight channel ``c mod C/G``.
    ``kernel_size`` is the large perception kernel K (official 7, the class default), ``small_kernel_size`` the
    aggregation kernel k (official 3) and ``groups`` G the number of channels sharing one dynamic kernel (official 8);
    the large DW conv runs through :mod:`convzoo.kernels.large_kernel`. ``bias`` is the bias of the weight-generating
    1×1 conv (official: present). Departure: the official op is stride 1; stride s strides the large DW conv (so
    the weights exist at the output centres), samples SKA at those centres and subsamples the residual.
    """

    same_channels = True

    def __init__(
        self, in_channels, out_channels, kernel_size=7, stride=1, *, dim=2, bias=True, small_kernel_size=3, groups=8
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        small = small_kernel_size
        if not is_int(small) or small < 1 or small % 2 == 0:
            raise ValueError(f"{name}: small_kernel_size must be a positive odd int, got {small!r}")
        if in_channels % check_int(groups, "groups", name):
            raise ValueError(
                f"{name}: groups must be a positive int dividing in_channels={in_channels}, got {groups!r}"
            )
        if in_channels < 2:
            raise ValueError(f"{name}: in_channels must be at least 2 (perception runs on C // 2), got {in_channels}")
        self.small_kernel_size, self.groups = small, groups
        half, weight_channels = in_channels // 2, in_channels // groups
        batch_norm = _BATCH_NORM[dim]
        self.reduce_weight, _ = conv_weight(half, in_channels, (1,) * dim, bias=False)
        self.reduce_bn = batch_norm(half)
        self.large_weight, _ = conv_weight(half, 1, self.kernel_size, bias=False)  # (C/2, 1, *K)
        self.large_bn = batch_norm(half)
        self.mix_weight, _ = conv_weight(half, half, (1,) * dim, bias=False)
        self.mix_bn = batch_norm(half)
        taps = small**dim
        self.generate_weight, self.generate_bias = conv_weight(taps * weight_channels, half, (1,) * dim, bias=bias)
        self.generate_norm = nn.GroupNorm(weight_channels, taps * weight_channels)
        self.out_bn = batch_norm(in_channels)

    def perceive(self, x: Tensor) -> Tensor:
        """The large-kernel perception: dynamic weights ``(N, C/G, k^d, *ceil(S / stride))``."""
        h = F.relu(self.reduce_bn(conv_nd(x, self.reduce_weight)))  # (N, C/2, *S)
        padding = same_padding(self.kernel_size)
        h = self.large_bn(depthwise_conv(h, self.large_weight, None, self.stride, padding))  # (N, C/2, *S')
        h = F.relu(self.mix_bn(conv_nd(h, self.mix_weight)))
        w = self.generate_norm(conv_nd(h, self.generate_weight, self.generate_bias))  # (N, k^d · C/G, *S')
        return w.view(w.shape[0], self.in_channels // self.groups, self.small_kernel_size**self.dim, *w.shape[2:])

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        aggregated = small_kernel_aggregation(x, self.perceive(x), self.small_kernel_size, self.stride)
        residual = x[(..., *(slice(None, None, s) for s in self.stride))]  # (N, C, *ceil(S / stride))
        return self.out_bn(aggregated) + residual

    def macs(self, input_size) -> int:
        """Per-sample MACs: the four 1×1 convs and the large DW conv, plus ``C · k^d`` per output for SKA."""
        full, out = math.prod(input_size), math.prod(-(-n // s) for n, s in zip(input_size, self.stride, strict=True))
        c, half, taps = self.in_channels, self.in_channels // 2, self.small_kernel_size**self.dim
        generated = taps * c // self.groups
        return (
            full * c * half
            + out * half * math.prod(self.kernel_size)
            + out * half * half
            + out * half * generated
            + out * c * taps
        )

    def extra_repr(self) -> str:
        return super().extra_repr() + (
            f", small_kernel_size={self.small_kernel_size}, groups={self.groups}, bias={self.generate_bias is not None}"
        )
