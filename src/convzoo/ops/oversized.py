"""ParCNetV2's oversized depthwise convolution (kernel about twice the input) inside its gated token mixer (N-d)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.init import conv_weight
from convzoo.core.validate import check_number, is_int
from convzoo.kernels.large_kernel import PATHS, depthwise_conv
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["BifurcateGateUnit", "Oversized", "oversized_conv"]


def oversized_conv(
    x: Tensor, axis_weights: list[Tensor], stride: tuple[int, ...], interpolate: bool, path: str | None = None
) -> Tensor:
    """ParCNetV2's oversized depthwise conv: one 1-d depthwise conv per spatial axis, in axis order.

    ``x`` is ``(N, C, *S)``; ``axis_weights[a]`` is ``(C, 1, K)``, the kernel along axis ``a``. Without
    ``interpolate`` each runs as stored with padding ``K // 2`` (a kernel of ``2S − 1`` built for side ``S`` then
    sees the whole axis from every position). With ``interpolate`` each kernel is first resized (linear,
    ``align_corners=True``, as the official bilinear resize of a ``K × 1`` kernel) to ``2·S_a − 1`` for the
    input's own side ``S_a``, padding ``S_a − 1``. Axis ``a`` is strided by ``stride[a]``. Every conv goes through
    :func:`~convzoo.kernels.large_kernel.depthwise_conv` (``path`` forces one of its paths).
    """
    dim = x.dim() - 2
    for axis, weight in enumerate(axis_weights):
        side = x.shape[2 + axis]
        if interpolate:
            weight = F.interpolate(weight, size=2 * side - 1, mode="linear", align_corners=True)  # (C, 1, 2S − 1)
        length = weight.shape[-1]
        shape = [1] * dim
        shape[axis] = length
        kernel = weight.view(weight.shape[0], 1, *shape)  # (C, 1, 1.., K, ..1): a band along this axis
        axis_stride = tuple(stride[a] if a == axis else 1 for a in range(dim))
        x = depthwise_conv(x, kernel, None, axis_stride, same_padding(shape), path=path)
    return x


@OPS.register("oversized", kind="grid", dims=(1, 2, 3), papers=("parcnetv2",), linear=False)
class Oversized(Op):
    """ParCNetV2 (S109): oversized depthwise convolution (kernel 2S − 1) with the bifurcate gate, as a token mixer.

    Input ``(N, C_in, *S)`` → output ``(N, C_out, *ceil(S / stride))``. As ``ParC_V2`` in XuRuihan/ParCNetV2
    (``models/parcnetv2.py``)::

        a, b = split(PW_1(x))                     # PW_1: C_in → 2M, M = int(expansion_ratio · C_in) // 2, bias
        b = GELU(b)
        y = PW_2(a ⊙ (Oversized_K(b) + DW_k(b)))  # PW_2: M → C_out (bias iff ``bias``)

    ``Oversized_K`` is :func:`oversized_conv` (per-axis ``K``-long depthwise kernels, no bias, the official
    ``OversizeConv2d``: K × 1 then 1 × K); ``DW_k`` a ``local_kernel_size^d`` depthwise conv, no bias (official 7).
    ``kernel_size`` is the oversized K: the official model builds K = 2S − 1 for the side S each stage sees at
    224² (111, 55, 27, 13 for S = 56, 28, 14, 7), so ``kernel_size`` states the size it is built for. At other
    sizes the official default (``interpolate=False``) applies the K kernel as is, zero-padded; ``interpolate=True``
    resizes it to ``2S − 1`` for each input (the official alternative), so the "twice the input" property holds at
    every size. Wide kernels run through :mod:`convzoo.kernels.large_kernel` (``path`` forces its direct, strips or FFT
    path). N-d: one band per axis. Stride s strides the oversized bands, the local DW conv and subsamples the gate.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=13,
        stride=1,
        *,
        dim=2,
        bias=True,
        local_kernel_size=7,
        expansion_ratio=2.0,
        interpolate=False,
        path=None,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if not is_int(local_kernel_size) or local_kernel_size < 1 or local_kernel_size % 2 == 0:
            raise ValueError(f"{name}: local_kernel_size must be a positive odd int, got {local_kernel_size!r}")
        check_number(expansion_ratio, "expansion_ratio", name)
        hidden = int(expansion_ratio * in_channels) // 2
        if hidden < 1:
            raise ValueError(
                f"{name}: expansion_ratio={expansion_ratio} at in_channels={in_channels} gives no gated channels "
                f"(int(ratio · C_in) // 2 = 0); expected at least 1"
            )
        if not isinstance(interpolate, bool):
            raise TypeError(f"{name}: interpolate must be a bool, got {interpolate!r}")
        if path is not None and path not in PATHS:
            raise ValueError(f"{name}: path must be one of {', '.join(PATHS)} or None, got {path!r}")
        self.local_kernel_size, self.expansion_ratio, self.hidden = local_kernel_size, expansion_ratio, hidden
        self.interpolate, self.path = interpolate, path
        self.pw1_weight, self.pw1_bias = conv_weight(2 * hidden, in_channels, (1,) * dim, bias=True)
        self.axis_weights = nn.ParameterList(
            conv_weight(hidden, 1, (k,), bias=False)[0] for k in self.kernel_size
        )  # each (M, 1, K_a)
        self.local_weight, _ = conv_weight(hidden, 1, (local_kernel_size,) * dim, bias=False)
        self.pw2_weight, self.pw2_bias = conv_weight(out_channels, hidden, (1,) * dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        gate, value = conv_nd(x, self.pw1_weight, self.pw1_bias).chunk(2, dim=1)  # (N, M, *S) each
        value = F.gelu(value)
        global_mix = oversized_conv(value, list(self.axis_weights), self.stride, self.interpolate, self.path)
        local_mix = depthwise_conv(
            value, self.local_weight, None, self.stride, same_padding(self.local_weight.shape[2:]), path=self.path
        )
        gate = gate[(..., *(slice(None, None, s) for s in self.stride))]  # (N, M, *ceil(S / stride))
        return conv_nd(gate * (global_mix + local_mix), self.pw2_weight, self.pw2_bias)  # (N, C_out, *S')

    def oversized_kernel(self, size: tuple[int, ...] | None = None) -> Tensor:
        """The dense ``(M, 1, *K)`` depthwise kernel of the oversized conv: the outer product of the axis kernels
        (at input ``size`` when ``interpolate``)."""
        kernel = None
        for axis, weight in enumerate(self.axis_weights):
            if self.interpolate:
                weight = F.interpolate(weight, size=2 * size[axis] - 1, mode="linear", align_corners=True)
            band = weight.view(weight.shape[0], 1, *([1] * axis), -1)  # (M, 1, 1.., K_a)
            kernel = band if kernel is None else kernel.unsqueeze(-1) * band
        return kernel

    def extra_repr(self) -> str:
        return super().extra_repr() + (
            f", local_kernel_size={self.local_kernel_size}, hidden={self.hidden}, interpolate={self.interpolate}, "
            f"path={self.path or 'measured choice'}, bias={self.pw2_bias is not None}"
        )


class BifurcateGateUnit(nn.Module):
    """ParCNetV2 (S109) bifurcate gate unit, the channel mixer: ``FC_2(a ⊙ GELU(b))``, ``a, b = split(FC_1(x))``.

    Channels-first ``(N, C, *S)`` → ``(N, C, *S)``; ``FC_1``: C → ``int(mlp_ratio · C)`` with bias, ``FC_2``:
    half of that → C, bias iff ``bias`` (official ``BGU``: ``mlp_ratio=5``, ``bias=False``).
    """

    def __init__(self, channels: int, mlp_ratio: float = 5.0, *, dim: int = 2, bias: bool = False) -> None:
        super().__init__()
        hidden = int(mlp_ratio * channels)
        self.fc1_weight, self.fc1_bias = conv_weight(hidden, channels, (1,) * dim, bias=True)
        self.fc2_weight, self.fc2_bias = conv_weight(channels, hidden // 2, (1,) * dim, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        a, b = conv_nd(x, self.fc1_weight, self.fc1_bias).chunk(2, dim=1)  # (N, hidden / 2, *S) each
        return conv_nd(a * F.gelu(b), self.fc2_weight, self.fc2_bias)
