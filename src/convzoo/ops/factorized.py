"""Low-rank factorised convolutions: asymmetric one-way chains (S3) and a priori CP kernels (S13)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_int
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["AsymmetricConv", "CPConv", "one_way_shape"]


def one_way_shape(kernel_size: tuple[int, ...], axis: int) -> tuple[int, ...]:
    """Kernel shape that spans ``axis`` only: ``(1, .., k_axis, .., 1)``."""
    return tuple(k if i == axis else 1 for i, k in enumerate(kernel_size))


def one_way_stride(stride: tuple[int, ...], axis: int) -> tuple[int, ...]:
    return tuple(s if i == axis else 1 for i, s in enumerate(stride))


def compose(outer: Tensor, inner: Tensor) -> Tensor:
    """Kernel of conv ``outer`` applied after conv ``inner`` when their taps lie on different axes.

    ``outer`` ``(O, M, *k_o)`` and ``inner`` ``(M, I, *k_i)`` broadcast to ``(O, I, *k)`` (outer product of taps).
    """
    return torch.einsum("om...,mi...->oi...", outer, inner)


@OPS.register("asym", kind="grid", dims=(2, 3), papers=("inception-v3",), linear=True)
class AsymmetricConv(Op):
    """Asymmetric factorisation (S3, Inception-v3): a k×k conv as k×1 then 1×k (one one-way conv per axis).

    ``C_in → mid → … → C_out``, each step convolving along one axis with that axis' stride. Only
    the last step has a bias, so zero padding between steps stays exact and the chain equals one
    dense conv whose kernel is the outer product of the one-way kernels (``dense_kernel``). The
    paper puts BN and ReLU between the two steps inside its Inception blocks; the operator is the
    linear factorisation alone. ``mid_channels`` defaults to ``out_channels``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, mid_channels=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        mid = check_int(out_channels if mid_channels is None else mid_channels, "mid_channels", "asym")
        self.mid_channels = mid
        weights = []
        for axis in range(dim):
            c_in = in_channels if axis == 0 else mid
            c_out = out_channels if axis == dim - 1 else mid
            w, _ = conv_weight(c_out, c_in, one_way_shape(self.kernel_size, axis), bias=False)
            weights.append(w)
        self.weights = nn.ParameterList(weights)
        self.bias = conv_weight(out_channels, mid, (1,), bias=True)[1] if bias else None

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        for axis, w in enumerate(self.weights):
            last = axis == self.dim - 1
            x = conv_nd(
                x,
                w,
                self.bias if last else None,
                stride=one_way_stride(self.stride, axis),
                padding=same_padding(w.shape[2:]),
            )
        return x

    def dense_kernel(self) -> ConvSpec:
        weight = self.weights[0].detach()
        for w in self.weights[1:]:
            weight = compose(w.detach(), weight)
        bias = None if self.bias is None else self.bias.detach().clone()
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mid_channels={self.mid_channels}"


@OPS.register("cp", kind="grid", dims=(1, 2, 3), papers=("apriori-compression",), linear=True)
class CPConv(Op):
    """A priori CP-compressed convolution (S13): the kernel is a sum of R rank-1 one-way filters, trained as such.

    ``W[o, i, x_1..x_d] = Σ_r A[o, r] · B[r, i] · Π_j K_j[r, x_j]``, evaluated as a 1×1 conv
    ``C_in → R``, one depthwise one-way conv per axis on the R channels, and a 1×1 conv
    ``R → C_out``. Parameters: ``R · (C_in + C_out + Σ_j k_j)`` plus the ``C_out`` bias.
    ``rank`` defaults to ``min(C_in, C_out)``.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, rank=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        rank = check_int(min(in_channels, out_channels) if rank is None else rank, "rank", "cp")
        self.rank = rank
        point = (1,) * dim
        self.project_in, _ = conv_weight(rank, in_channels, point, bias=False)  # B: (R, C_in, 1..)
        self.factors = nn.ParameterList(
            conv_weight(rank, 1, one_way_shape(self.kernel_size, axis), bias=False)[0] for axis in range(dim)
        )  # K_j: (R, 1, .., k_j, ..)
        self.project_out, self.bias = conv_weight(out_channels, rank, point, bias)  # A: (C_out, R, 1..)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        x = conv_nd(x, self.project_in)  # (N, R, *S)
        for axis, k in enumerate(self.factors):
            stride = one_way_stride(self.stride, axis)
            x = conv_nd(x, k, stride=stride, padding=same_padding(k.shape[2:]), groups=self.rank)
        return conv_nd(x, self.project_out, self.bias)  # (N, C_out, *S')

    def dense_kernel(self) -> ConvSpec:
        taps = self.factors[0].detach()[:, 0]  # (R, k_1, 1, ..)
        for k in self.factors[1:]:
            taps = taps * k.detach()[:, 0]  # (R, k_1, k_2, ..) outer product per rank
        a = self.project_out.detach().flatten(1)  # (C_out, R)
        b = self.project_in.detach().flatten(1)  # (R, C_in)
        weight = torch.einsum("or,ri,r...->oi...", a, b, taps)  # (C_out, C_in, *k)
        bias = None if self.bias is None else self.bias.detach().clone()
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", rank={self.rank}"
