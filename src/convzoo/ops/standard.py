"""Plain, grouped, constant-group-size and depthwise-separable convolutions (N-d)."""

from __future__ import annotations

import torch
from torch import Tensor

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_groups, check_int, ntuple
from convzoo.ops.base import ConvSpec, Op
from convzoo.registry import OPS

__all__ = ["Conv", "GroupConv", "E2GConv", "DepthwiseSeparableConv"]


@OPS.register("conv", kind="grid", dims=(1, 2, 3), linear=True)
class Conv(Op):
    """Plain N-d convolution with "same" padding, optional dilation and groups (the baseline of every comparison)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, dilation=1, groups=1):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        self.dilation = ntuple(dilation, dim, "dilation", name)
        if any(d < 1 for d in self.dilation):
            raise ValueError(f"{name}: dilation must be positive, got {dilation!r}")
        self.groups = check_groups(groups, name, in_channels=in_channels, out_channels=out_channels)
        self.weight, self.bias = conv_weight(out_channels, in_channels // groups, self.kernel_size, bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return conv_nd(
            x,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=same_padding(self.kernel_size, self.dilation),
            dilation=self.dilation,
            groups=self.groups,
        )

    def dense_kernel(self) -> ConvSpec:
        return ConvSpec(
            self.weight.detach().clone(),
            None if self.bias is None else self.bias.detach().clone(),
            self.stride,
            same_padding(self.kernel_size, self.dilation),
            self.dilation,
            self.groups,
        )

    def extra_repr(self) -> str:
        extra = ""
        if any(d != 1 for d in self.dilation):
            extra += f", dilation={self.dilation}"
        if self.groups != 1:
            extra += f", groups={self.groups}"
        return super().extra_repr() + extra + f", bias={self.bias is not None}"


@OPS.register("group", kind="grid", dims=(1, 2, 3), linear=True)
class GroupConv(Conv):
    """Grouped convolution with a fixed number of groups (AlexNet/ResNeXt style; default 2 groups)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, groups=2, dilation=1):
        super().__init__(
            in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias, dilation=dilation, groups=groups
        )


@OPS.register("e2gc", kind="grid", dims=(1, 2, 3), papers=("e2gc",), linear=True)
class E2GConv(Conv):
    """E2GC (S30): group convolution with a constant group *size* G, so groups = in_channels / G.

    A fixed number of groups makes the per-group width (and so data reuse) shrink or grow with
    the layer width; E2GC keeps the width G of every group constant instead. The default G = 4 is
    the group width of ResNeXt-50 32×4d's first stage (128 channels / 32 groups).
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, group_size=4):
        name = type(self).registry_name
        check_int(group_size, "group_size", name)
        if in_channels % group_size:
            raise ValueError(
                f"{name}: in_channels ({in_channels}) must be divisible by group_size G={group_size} "
                f"(groups = in_channels / G)"
            )
        groups = in_channels // group_size
        if out_channels % groups:
            raise ValueError(
                f"{name}: out_channels ({out_channels}) must be divisible by groups = in_channels / G = {groups}"
            )
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias, groups=groups)
        self.group_size = group_size

    def extra_repr(self) -> str:
        return super().extra_repr() + f", group_size={self.group_size}"


@OPS.register("dwsep", kind="grid", dims=(1, 2, 3), linear=True)
class DepthwiseSeparableConv(Op):
    """Depthwise-separable convolution: depthwise k×k (channel multiplier m) then pointwise 1×1, linear as in Xception.

    There is no nonlinearity or norm between the two steps (Keras' ``SeparableConv``), so the pair
    is one linear map: ``W[o, i] = Σ_j pointwise[o, i·m + j] · depthwise[i·m + j]``. The depthwise
    step has no bias, so the zero padding of the pointwise input stays exact.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, depth_multiplier=1):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        self.depth_multiplier = check_int(depth_multiplier, "depth_multiplier", type(self).registry_name)
        mid = in_channels * depth_multiplier
        self.depthwise, _ = conv_weight(mid, 1, self.kernel_size, bias=False)
        self.pointwise, self.bias = conv_weight(out_channels, mid, (1,) * dim, bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        padding = same_padding(self.kernel_size)
        y = conv_nd(x, self.depthwise, None, stride=self.stride, padding=padding, groups=self.in_channels)
        return conv_nd(y, self.pointwise, self.bias)

    def dense_kernel(self) -> ConvSpec:
        m = self.depth_multiplier
        # (C_out, C_in, m) pointwise weights times (C_in, m, *k) depthwise kernels
        pointwise = self.pointwise.detach().flatten(1).view(self.out_channels, self.in_channels, m)
        depthwise = self.depthwise.detach().view(self.in_channels, m, *self.kernel_size)
        weight = torch.einsum("oim,im...->oi...", pointwise, depthwise)  # (C_out, C_in, *k)
        bias = None if self.bias is None else self.bias.detach().clone()
        return ConvSpec(weight, bias, self.stride, same_padding(self.kernel_size), (1,) * self.dim)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", depth_multiplier={self.depth_multiplier}"
