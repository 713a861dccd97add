"""SMPConv (S74): a continuous kernel from self-moving points with learnable positions and radii."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_groups, check_int
from convzoo.ops.base import BuiltKernelOp
from convzoo.registry import OPS

__all__ = ["SMPConv", "smp_kernel", "kernel_coordinates"]

MIN_RADIUS = 1e-3  # the official lower clip of the radii
POSITION_INIT_STD = 0.2
WEIGHT_INIT_STD = 0.02


def kernel_coordinates(kernel_size: tuple[int, ...]) -> Tensor:
    """Normalised coordinates of the kernel grid, ``(Π k, dim)`` row-major: ``linspace(-1, 1, k_d)`` per axis."""
    axes = [torch.linspace(-1, 1, k) if k > 1 else torch.zeros(1) for k in kernel_size]
    grids = torch.meshgrid(*axes, indexing="ij")  # dim × (*k)
    return torch.stack([g.reshape(-1) for g in grids], dim=-1)  # (Π k, dim)


def smp_kernel(
    weights: Tensor, positions: Tensor, radius: Tensor, coordinates: Tensor, kernel_size: tuple[int, ...]
) -> Tensor:
    """``K[o, i, u] = Σ_p weights[o, i, p] · max(0, 1 − ‖c_u − positions[p]‖₁ / radius[p])``.

    ``weights`` ``(C_out, C_in / g, P)``, ``positions`` ``(P, dim)``, ``radius`` ``(P,)`` (clamped below at
    1e-3), ``coordinates`` ``(Π k, dim)`` → ``(C_out, C_in / g, *kernel_size)``.
    """
    distance = (coordinates.unsqueeze(0) - positions.unsqueeze(1)).abs().sum(-1)  # (P, Π k) L1 distances
    influence = torch.relu(1 - distance / radius.clamp_min(MIN_RADIUS).unsqueeze(-1))  # (P, Π k)
    kernel = weights @ influence  # (C_out, C_in / g, Π k)
    return kernel.reshape(*weights.shape[:2], *kernel_size)  # (C_out, C_in / g, *k)


@OPS.register("smpconv", kind="grid", dims=(1, 2, 3), papers=("smpconv",), linear=True)
class SMPConv(BuiltKernelOp):
    """SMPConv (S74, Self-moving Point Representations for Continuous Convolution): kernel from moving points.

    ``(N, C_in, *S) → (N, C_out, *ceil(S / stride))``, N-d. P points with learnable positions
    ``p ∈ [-1, 1]^dim`` and radii ``r`` carry one weight per ``(out, in / groups)`` pair; the kernel on the
    grid ``c_u = linspace(-1, 1, k)^dim`` is ``K[u] = Σ_p w_p · max(0, 1 − ‖c_u − p‖₁ / r_p)``
    (:func:`smp_kernel`), then a native convolution runs with "same" padding.

    Following the official ImageNet ``SMPConv`` (sangnekim/SMPConv): positions and radii shared by all
    channels, ``n_points = Π k // 4`` by default (``n_points_divide = 4``; at least 1), positions init
    truncated-normal (std 0.2, in [-1, 1]), radii init ``2 · (2 / k)`` (k = the largest kernel side),
    weights truncated-normal (std 0.02); ``bias`` starts at zero (the official op has none, a BN follows).
    Departures: the official op is depthwise only; here ``groups`` chooses (default 1, a full conv, as the
    official sequence ``SMPKernel``). The radius is clamped below at 1e-3 inside the kernel construction
    instead of clipped to [1e-3, 1] after each step; the official code transposes and flips the built 2-d
    kernel, which only relabels the learnable positions and is not done here. For a 1-wide axis the
    coordinate is 0 (``linspace(-1, 1, 1)`` would put it at -1).
    """

    def __init__(
        self, in_channels, out_channels, kernel_size=3, stride=1, *, dim=2, bias=True, n_points=None, groups=1
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        taps = 1
        for k in self.kernel_size:
            taps *= k
        if n_points is None:
            n_points = max(1, taps // 4)
        check_int(n_points, "n_points", name)
        check_groups(groups, name, in_channels=in_channels, out_channels=out_channels)
        self.n_points = n_points
        self.groups = groups
        self.register_buffer("coordinates", kernel_coordinates(self.kernel_size), persistent=False)
        positions = torch.empty(n_points, dim)
        nn.init.trunc_normal_(positions, std=POSITION_INIT_STD, a=-1.0, b=1.0)
        self.positions = nn.Parameter(positions)
        self.radius = nn.Parameter(torch.full((n_points,), 2 * (2 / max(self.kernel_size))))
        weights = torch.empty(out_channels, in_channels // groups, n_points)
        nn.init.trunc_normal_(weights, std=WEIGHT_INIT_STD)
        self.weights = nn.Parameter(weights)
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def kernel(self) -> Tensor:
        """The dense kernel ``(C_out, C_in / groups, *kernel_size)``, differentiable in positions and radii."""
        return smp_kernel(self.weights, self.positions, self.radius, self.coordinates, self.kernel_size)

    def _extra(self) -> str:
        return f", n_points={self.n_points}"
