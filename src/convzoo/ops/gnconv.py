"""Recursive gated convolution gⁿConv (S96, HorNet), N-d."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.core.conv import run_conv
from convzoo.core.validate import check_int, check_number
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["GnConv", "gnconv_channels"]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def gnconv_channels(channels: int, order: int) -> list[int]:
    """Channels of the ``order`` recursion steps, smallest first: ``[C / 2^(n−1), …, C / 2, C]``."""
    return [channels // 2**i for i in range(order)][::-1]


@OPS.register("gnconv", kind="grid", dims=(1, 2, 3), papers=("hornet",), dynamic=True)
class GnConv(Op):
    """Recursive gated convolution gⁿConv (S96, HorNet: Efficient High-Order Spatial Interactions).

    With ``C_k = C / 2^(n−1−k)`` (``k = 0..n−1``): ``[p_0, q] = proj_in(x)`` (1×1, C → 2C, ``p_0`` has ``C_0``
    channels), ``[q_0, …, q_{n−1}] = s · DWConv_k(q)`` (one depthwise conv over ``ΣC_k`` channels, split),
    ``p_{k+1} = g_k(p_k) ⊙ q_{k+1}`` with 1×1 ``g_k: C_k → C_{k+1}`` (``p_1 = p_0 ⊙ q_0`` first), and
    ``y = proj_out(p_n)`` (1×1, C → C). ``order`` n (5, the official default; HorNet uses 2/3/4/5 per stage)
    needs ``C`` divisible by ``2^(n−1)``; ``scale`` s = 1/3 as in every official HorNet model. The depthwise
    kernel is ``kernel_size`` (7 in HorNet-7×7) with its bias; every 1×1 has a bias, and ``bias=`` only
    controls ``proj_out``'s. Input ``(N, C, *S)`` → ``(N, C, *S)``; C → C and stride 1 only (gⁿConv is a token
    mixer: HorNet downsamples between stages). ``dwconv`` is a plain attribute so a model can swap in another
    spatial operator (HorNet's global filter, or ``op=``).
    """

    same_channels = True
    max_stride = 1
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
        order: int = 5,
        scale: float = 1.0 / 3.0,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        if in_channels % 2 ** (check_int(order, "order", name) - 1):
            raise ValueError(
                f"{name}: channels must be divisible by 2^(order-1) = {2 ** (order - 1)} for order {order}, "
                f"got {in_channels}"
            )
        self.order, self.scale = order, float(check_number(scale, "scale", name, low=None))
        self.dims = gnconv_channels(in_channels, order)
        conv = _CONV[dim]
        gated = sum(self.dims)
        k = self.kernel_size
        self.proj_in = conv(in_channels, 2 * in_channels, 1)
        self.dwconv: nn.Module = conv(gated, gated, k, padding=tuple(s // 2 for s in k), groups=gated)
        self.pws = nn.ModuleList(conv(self.dims[i], self.dims[i + 1], 1) for i in range(order - 1))
        self.proj_out = conv(in_channels, in_channels, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        fused = run_conv(self.proj_in, x)  # (N, 2C, *S)
        gate, gated = torch.split(fused, (self.dims[0], sum(self.dims)), dim=1)  # (N, C_0, *S), (N, ΣC_k, *S)
        spatial = torch.split(run_conv(self.dwconv, gated) * self.scale, self.dims, dim=1)  # (N, C_k, *S) each
        y = gate * spatial[0]
        for pointwise, q in zip(self.pws, spatial[1:], strict=True):
            y = run_conv(pointwise, y) * q
        return run_conv(self.proj_out, y)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, order={self.order}, dims={self.dims}, scale={self.scale:.4f}"
