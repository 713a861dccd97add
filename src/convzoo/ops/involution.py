"""Involution (S106): spatial-specific, channel-shared kernels generated from the input itself, G groups."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import conv_nd
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_int
from convzoo.ops._layout import empty
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["Involution", "involution_aggregate", "involution_aggregate_unfold"]

_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


def _check_aggregation_shapes(x: Tensor, kernels: Tensor, kernel_size: tuple[int, ...], stride: tuple[int, ...]):
    n, channels, *size = x.shape
    taps = 1
    for k in kernel_size:
        taps *= k
    out_size = [-(-s // st) for s, st in zip(size, stride, strict=True)]
    groups = kernels.shape[1] // taps
    if kernels.shape[0] != n or kernels.shape[1] != groups * taps or list(kernels.shape[2:]) != out_size:
        raise ValueError(
            f"involution: kernels must be (N, G·{taps}, *{out_size}) for input {tuple(x.shape)}, "
            f"got {tuple(kernels.shape)}"
        )
    if groups < 1 or channels % groups:
        raise ValueError(f"involution: {channels} channels do not split into {groups} kernel groups")
    return n, channels, groups, taps, out_size


def involution_aggregate(x: Tensor, kernels: Tensor, kernel_size: tuple[int, ...], stride: tuple[int, ...]) -> Tensor:
    """Involution's aggregation as a sum over the K^d shifted views of the input: no unfolded patch buffer.

    ``x`` is ``(N, C, *S)``; ``kernels`` is ``(N, G·Π k, *S')`` with ``S' = ceil(S / stride)``, channel
    ``g·Π k + j`` holding tap ``j`` (row-major over the kernel window) of group ``g``; channel ``c`` of ``x``
    belongs to group ``c // (C / G)``. Returns ``(N, C, *S')``:
    ``y[n, c, o] = Σ_j kernels[n, g(c)·Πk + j, o] · x_pad[n, c, o·stride + j]`` with "same" zero padding
    ``(k − 1) // 2``. Each tap is one multiply-add over ``(N, C, *S')`` tensors (a strided view of the padded
    input times the broadcast kernel slice), so memory stays at the size of the input and output. The sum runs
    in ``x``'s memory format and the output has it: for a channels-last input every multiply-add runs over
    contiguous channel runs with one kernel value each (the broadcast is cheapest there).
    """
    n, channels, groups, taps, out_size = _check_aggregation_shapes(x, kernels, kernel_size, stride)
    pad = [(k - 1) // 2 for k in kernel_size]
    padded = F.pad(x, [p for p in reversed(pad) for _ in range(2)])  # (N, C, *S_pad), x's memory format
    padded = padded.unflatten(1, (groups, channels // groups))  # (N, G, C / G, *S_pad), a view
    kernels = kernels.unflatten(1, (groups, taps))  # (N, G, Πk, *S'), a view
    out = empty((n, channels, *out_size), like=x).zero_()  # (N, C, *S')
    grouped = out.unflatten(1, (groups, channels // groups))  # (N, G, C / G, *S'), a view of out
    for j, offset in enumerate(itertools.product(*(range(k) for k in kernel_size))):
        window = tuple(slice(o, o + st * (s - 1) + 1, st) for o, st, s in zip(offset, stride, out_size, strict=True))
        shifted = padded[(slice(None),) * 3 + window]  # (N, G, C / G, *S') strided view
        grouped.addcmul_(shifted, kernels[:, :, j].unsqueeze(2))  # kernel (N, G, 1, *S') broadcast over C / G
    return out  # (N, C, *S')


def involution_aggregate_unfold(
    x: Tensor, kernels: Tensor, kernel_size: tuple[int, ...], stride: tuple[int, ...]
) -> Tensor:
    """The same aggregation as :func:`involution_aggregate` through materialised patches (the official form).

    Builds the ``(N, C, Πk, *S')`` patch tensor (2-d: ``F.unfold``'s ``(N, C·Πk, H'·W')``) and sums it against
    the kernels; kept as the baseline the ``dynamic`` benchmark compares against.
    """
    n, channels, groups, taps, out_size = _check_aggregation_shapes(x, kernels, kernel_size, stride)
    pad = [(k - 1) // 2 for k in kernel_size]
    padded = F.pad(x, [p for p in reversed(pad) for _ in range(2)])  # (N, C, *(S + 2·pad))
    if len(kernel_size) == 2:
        patches = F.unfold(padded, kernel_size, stride=stride)  # (N, C·Πk, H'·W')
    else:
        patches = padded
        for axis, (k, st) in enumerate(zip(kernel_size, stride, strict=True)):
            patches = patches.unfold(2 + axis, k, st)  # (N, C, *S', *k) once every axis is unfolded
        patches = patches.reshape(n, channels, -1, taps).transpose(2, 3)  # (N, C, Πk, ΠS')
    patches = patches.reshape(n, groups, channels // groups, taps, *out_size)  # (N, G, C / G, Πk, *S')
    kernels = kernels.view(n, groups, 1, taps, *out_size)  # (N, G, 1, Πk, *S')
    return (patches * kernels).sum(dim=3).view(n, channels, *out_size)  # (N, C, *S')


@OPS.register("involution", kind="grid", dims=(1, 2, 3), papers=("involution",), dynamic=True)
class Involution(Op):
    """Involution (S106, Involution: Inverting the Inherence of Convolution): per-pixel kernels shared over channels.

    ``(N, C, *S) → (N, C, *ceil(S / stride))``, N-d, following the official ``involution`` module (d-li14):

    1. kernel generation: ``x̄ = AvgPool_stride(x)`` (only when stride > 1), then
       ``kernels = conv1x1_{C/r → G·K^d}(ReLU(BN(conv1x1_{C → C/r}(x̄))))`` (first 1×1 without bias, second
       with bias), reduction ``r = 4``, ``G = C / group_channels`` groups with ``group_channels = 16``;
    2. aggregation: ``y[c, o] = Σ_j kernels[g(c)·K^d + j, o] · x[o·stride + j − (K − 1) // 2]`` over the
       K^d window, the same kernel for the ``C / G`` channels of a group (:func:`involution_aggregate`,
       shifted views; ``aggregation="unfold"`` selects the official unfold form).

    ``bias`` is the bias of the second (kernel-generating) 1×1 conv, which the official module has. The
    official average pool floors odd sizes while its unfold ceils them; here the pool uses ``ceil_mode`` so
    every size works (a departure only for odd sizes at stride > 1). Training mode batch-normalises the
    reduced features, so it needs more than one value per channel (batch × pixels > 1).
    """

    same_channels = True
    contract_channels = (16, 16)

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=2,
        bias=True,
        reduction=4,
        group_channels=16,
        aggregation="shifted",
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        check_int(reduction, "reduction", name)
        check_int(group_channels, "group_channels", name)
        if in_channels % group_channels:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) must be divisible by group_channels ({group_channels})"
            )
        if in_channels // reduction < 1:
            raise ValueError(f"{name}: reduction ({reduction}) leaves no channels of {in_channels}")
        if aggregation not in ("shifted", "unfold"):
            raise ValueError(f"{name}: aggregation must be 'shifted' or 'unfold', got {aggregation!r}")
        self.reduction = reduction
        self.group_channels = group_channels
        self.groups = in_channels // group_channels
        self.aggregation = aggregation
        taps = 1
        for k in self.kernel_size:
            taps *= k
        reduced, pointwise = in_channels // reduction, (1,) * dim
        self.reduce_weight, _ = conv_weight(reduced, in_channels, pointwise, bias=False)
        self.reduce_norm = _BATCH_NORM[dim](reduced)
        self.span_weight, self.span_bias = conv_weight(self.groups * taps, reduced, pointwise, bias)

    def generate_kernels(self, x: Tensor) -> Tensor:
        """The per-pixel kernels ``(N, G·K^d, *ceil(S / stride))`` generated from ``x`` ``(N, C, *S)``."""
        if any(s > 1 for s in self.stride):
            # a window no wider than the input, so a side smaller than the stride still pools to one position
            window = tuple(min(st, s) for st, s in zip(self.stride, x.shape[2:], strict=True))
            pool_input = x.float() if x.dtype == torch.bfloat16 and self.dim == 3 else x  # no bf16 3-d pool on CPU
            x = _AVG_POOL[self.dim](pool_input, window, self.stride, ceil_mode=True).to(x.dtype)  # (N, C, *S')
        reduced = torch.relu(self.reduce_norm(conv_nd(x, self.reduce_weight)))  # (N, C / r, *S')
        return conv_nd(reduced, self.span_weight, self.span_bias)  # (N, G·K^d, *S')

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        kernels = self.generate_kernels(x)
        aggregate = involution_aggregate if self.aggregation == "shifted" else involution_aggregate_unfold
        return aggregate(x, kernels, self.kernel_size, self.stride)

    def macs(self, input_size: tuple[int, ...]) -> int:
        """MACs per sample: the two 1×1 convs at the pooled size plus ``C · K^d`` per output position."""
        outputs = 1
        for s, st in zip(input_size, self.stride, strict=True):
            outputs *= -(-s // st)
        reduced = self.in_channels // self.reduction
        taps = self.span_weight.shape[0] // self.groups
        return outputs * (self.in_channels * reduced + reduced * self.groups * taps + self.in_channels * taps)

    def extra_repr(self) -> str:
        return super().extra_repr() + (
            f", reduction={self.reduction}, groups={self.groups}, aggregation={self.aggregation!r}, "
            f"bias={self.span_bias is not None}"
        )
