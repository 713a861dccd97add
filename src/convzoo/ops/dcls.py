"""Dilated Convolution with Learnable Spacings (S17): kernel taps at learnable positions, interpolated onto the grid."""

from __future__ import annotations

import string

import torch
from torch import Tensor, nn

from convzoo.core.init import conv_weight
from convzoo.core.validate import check_groups, check_int
from convzoo.ops.base import BuiltKernelOp
from convzoo.registry import OPS

__all__ = ["DilatedConvLearnableSpacings", "dcls_kernel", "INTERPOLATIONS"]

INTERPOLATIONS = ("bilinear", "gaussian")
# The official package's constants: Gaussian widths are |sigma| + SIGMA_FLOOR, sigma starts at SIGMA_INIT (so the
# initial width is 0.5 grid steps), and the interpolation weights of a tap are divided by their sum + NORM_EPS.
SIGMA_FLOOR = 0.27
SIGMA_INIT = 0.23
NORM_EPS = 1e-7
POSITION_INIT_STD = 0.5


def _axis_weights(positions: Tensor, sigma: Tensor | None, size: int, interpolation: str) -> Tensor:
    """Interpolation weights of every tap on one kernel axis: ``(C_out, C_in / g, T)`` positions → ``(..., T, size)``.

    Positions are centred (0 is the kernel centre) and clamped to the kernel, ``[-(size // 2), size // 2]``;
    the clamp is part of the construction, so gradients flow for every position inside the kernel.
    """
    half = size // 2
    grid = torch.arange(size, dtype=positions.dtype, device=positions.device) - half  # (size,) centred indices
    centred = positions.clamp(-half, half).unsqueeze(-1)  # (C_out, C_in / g, T, 1)
    distance = grid - centred  # (C_out, C_in / g, T, size)
    if interpolation == "bilinear":
        return torch.relu(1 - distance.abs())  # the triangle (linear) hat: 2 non-zero neighbours per tap
    width = sigma.abs().unsqueeze(-1) + SIGMA_FLOOR  # (C_out, C_in / g, T, 1)
    return torch.exp(-0.5 * (distance / width) ** 2)


def dcls_kernel(
    weight: Tensor,
    positions: Tensor,
    dilated_kernel_size: tuple[int, ...],
    interpolation: str = "bilinear",
    sigma: Tensor | None = None,
) -> Tensor:
    """The dense DCLS kernel: each tap's weight spread over the grid around its (clamped) position.

    ``weight`` is ``(C_out, C_in / g, T)`` for T taps; ``positions`` (and ``sigma`` for Gaussian interpolation)
    ``(dim, C_out, C_in / g, T)``, with ``positions[d]`` the centred position along spatial axis d. Returns
    ``(C_out, C_in / g, *dilated_kernel_size)``:
    ``K[o, i, u] = Σ_t weight[o, i, t] · Π_d φ_d(u_d − p_d) / (Σ_v Π_d φ_d(v_d − p_d) + 1e-7)`` with
    ``φ(x) = max(0, 1 − |x|)`` (bilinear) or ``exp(−x² / 2σ²)`` (Gaussian, σ = |sigma| + 0.27).

    Both interpolations are separable per axis, so the kernel is an einsum of per-axis factors and never builds
    the ``(*dilated_kernel_size, dim, C_out, C_in / g, T)`` tensor the official package builds.
    """
    dim = len(dilated_kernel_size)
    factors = [
        _axis_weights(positions[d], None if sigma is None else sigma[d], size, interpolation)
        for d, size in enumerate(dilated_kernel_size)
    ]  # dim × (C_out, C_in / g, T, k_d)
    total = torch.stack([f.sum(-1) for f in factors]).prod(0)  # (C_out, C_in / g, T) mass of each tap on the grid
    scaled = weight / (total + NORM_EPS)  # (C_out, C_in / g, T)
    axes = string.ascii_lowercase[:dim]
    terms = ",".join(f"oit{a}" for a in axes)
    return torch.einsum(f"oit,{terms}->oi{axes}", scaled, *factors)  # (C_out, C_in / g, *k)


@OPS.register("dcls", kind="grid", dims=(1, 2, 3), papers=("dcls",), linear=True)
class DilatedConvLearnableSpacings(BuiltKernelOp):
    """DCLS (S17, Dilated Convolution with Learnable Spacings): T taps per filter at learnable positions.

    ``(N, C_in, *S) → (N, C_out, *ceil(S / stride))``, N-d. ``kernel_size`` is the *dilated* kernel size
    (odd, per axis); each ``(out, in / groups)`` pair has ``kernel_count`` weights, each with a learnable
    real position per spatial axis. Every tap is interpolated onto the integer grid (:func:`dcls_kernel`:
    bilinear as in the DCLS paper, or Gaussian with a learnable width per tap and axis as in DCLS v2), the
    dense kernel is built, then a native convolution runs with "same" padding.

    Parametrisation as in the official package (``DCLS.construct.modules.Dcls{1,2,3}d``): weights init like
    a conv over ``(C_out, C_in / g, T)``; positions centred on the kernel, init N(0, 0.5) clamped to
    ``±(k // 2)``; Gaussian ``sigma`` init 0.23, width ``|sigma| + 0.27``; each tap's interpolation weights
    normalised by their sum + 1e-7. Defaults: ``kernel_count=34`` (the paper's ConvNeXt-dcls setting, 17×17
    dilated kernel), bilinear interpolation, ``groups=1``.

    Departures: positions are clamped inside the kernel construction (differentiably; the package clamps
    the parameter in place after every optimiser step instead), and ``positions[d]`` is the position along
    spatial axis ``d`` (the package's 2-d kernel pairs its first position row with the last axis). The
    convolution runs in the input's memory format; for depthwise kernels on the CPU, channels-last is the fast
    one (a caller picks it, the op does not convert).
    """

    contract_kernel_size = 5  # room for taps to sit between grid points in the contract tests

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=2,
        bias=True,
        kernel_count=34,
        groups=1,
        interpolation="bilinear",
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        check_int(kernel_count, "kernel_count", name)
        check_groups(groups, name, in_channels=in_channels, out_channels=out_channels)
        if interpolation not in INTERPOLATIONS:
            raise ValueError(f"{name}: interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
        self.kernel_count = kernel_count
        self.groups = groups
        self.interpolation = interpolation
        in_per_group = in_channels // groups
        self.weight, self.bias = conv_weight(out_channels, in_per_group, (kernel_count,), bias)
        positions = torch.empty(dim, out_channels, in_per_group, kernel_count)
        with torch.no_grad():
            for d, size in enumerate(self.kernel_size):
                nn.init.normal_(positions[d], 0.0, POSITION_INIT_STD).clamp_(-(size // 2), size // 2)
        self.positions = nn.Parameter(positions)
        if interpolation == "gaussian":
            self.sigma = nn.Parameter(torch.full((dim, out_channels, in_per_group, kernel_count), SIGMA_INIT))
        else:
            self.register_parameter("sigma", None)

    def kernel(self) -> Tensor:
        """The dense dilated kernel ``(C_out, C_in / groups, *kernel_size)``, differentiable in every parameter."""
        return dcls_kernel(self.weight, self.positions, self.kernel_size, self.interpolation, self.sigma)

    def _extra(self) -> str:
        return f", kernel_count={self.kernel_count}, interpolation={self.interpolation!r}"
