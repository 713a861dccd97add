"""Weighted convolution (S45): the kernel scaled elementwise by a symmetric spatial density function."""

from __future__ import annotations

import string
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_groups
from convzoo.ops.base import BuiltKernelOp
from convzoo.registry import OPS

__all__ = ["WeightedConv", "density_profile", "density_grid", "DEFAULT_DENSITY"]

# Density values from the outermost tap inwards, per kernel size: the official README's examples
# (cammarasana123/weightedConvolution2.0; 7×7 is the value that gave its best denoising results).
DEFAULT_DENSITY = {1: (), 3: (0.7,), 5: (0.2, 0.8), 7: (0.25, 0.15, 0.55)}


def density_profile(outer_values: Tensor) -> Tensor:
    """The 1-d density ``[d_0, …, d_{h−1}, 1, d_{h−1}, …, d_0]`` (length 2h + 1) from the ``h`` outer values."""
    centre = torch.ones(1, dtype=outer_values.dtype, device=outer_values.device)
    return torch.cat([outer_values, centre, outer_values.flip(0)])


def density_grid(profiles: Sequence[Tensor]) -> Tensor:
    """The N-d density ``Φ[u] = Π_d φ_d[u_d]``: the outer product of the per-axis profiles, shape ``(*k)``."""
    axes = string.ascii_lowercase[: len(profiles)]
    return torch.einsum(",".join(axes) + "->" + axes, *profiles)


@OPS.register("weighted", kind="grid", dims=(1, 2, 3), papers=("weighted-conv",), linear=True)
class WeightedConv(BuiltKernelOp):
    """Weighted convolution (S45, Optimal Weighted Convolution for Classification and Denoising): kernel ⊙ density.

    ``y = conv(x, W ⊙ Φ) + b`` with the density ``Φ[u] = Π_d φ[u_d]`` (outer product over the axes) and the
    symmetric 1-d profile ``φ = [d_0, …, d_{h−1}, 1, d_{h−1}, …, d_0]``, ``h = k // 2``, weighting each
    neighbour by its offset from the centre pixel; the parameter count is that of the plain conv. ``density``
    gives ``d`` (outermost first); by default the official README's values per kernel size (3: [0.7],
    5: [0.2, 0.8], 7: [0.25, 0.15, 0.55]; other sizes need ``density``). With ``learnable=False`` Φ is
    precomputed once (a constant buffer); with ``learnable=True`` ``d`` is a parameter of the layer, shared by
    the axes as in the official trainable variant (``wConv-Trainable``), which needs a square kernel.
    Weights are initialised like the official code (Kaiming normal, fan-out, ReLU gain; zero bias).
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=3,
        stride=1,
        *,
        dim=2,
        bias=True,
        density=None,
        learnable=False,
        groups=1,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        check_groups(groups, name, in_channels=in_channels, out_channels=out_channels)
        if not isinstance(learnable, bool):
            raise TypeError(f"{name}: learnable must be a bool, got {learnable!r}")
        if learnable and len(set(self.kernel_size)) > 1:
            raise ValueError(
                f"{name}: learnable density shares one profile over the axes: needs a square kernel, "
                f"got kernel_size {self.kernel_size}"
            )
        if density is None:
            missing = sorted({k for k in self.kernel_size if k not in DEFAULT_DENSITY})
            if missing:
                raise ValueError(
                    f"{name}: no default density for kernel size {missing[0]} (defaults exist for "
                    f"{sorted(DEFAULT_DENSITY)}); pass density=[k // 2 values, outermost first]"
                )
            values = [DEFAULT_DENSITY[k] for k in self.kernel_size]
        else:
            values = [tuple(float(v) for v in density)] * dim
            wrong = [k for k in self.kernel_size if len(values[0]) != k // 2]
            if wrong:
                raise ValueError(
                    f"{name}: density needs kernel_size // 2 = {wrong[0] // 2} values for kernel size {wrong[0]}, "
                    f"got {len(values[0])} ({density!r})"
                )
        self.groups = groups
        self.learnable = learnable
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        if learnable:
            self.density_values = nn.Parameter(torch.tensor(values[0]))
        else:
            profiles = [density_profile(torch.tensor(v, dtype=torch.float32)) for v in values]
            self.register_buffer("density", density_grid(profiles), persistent=False)

    def density_function(self) -> Tensor:
        """The density ``Φ`` of shape ``(*kernel_size)``."""
        if self.learnable:
            return density_grid([density_profile(self.density_values)] * self.dim)
        return self.density

    def kernel(self) -> Tensor:
        """``W ⊙ Φ``: ``(C_out, C_in / groups, *kernel_size)``."""
        return self.weight * self.density_function().to(self.weight.dtype)

    def _extra(self) -> str:
        return f", learnable={self.learnable}"
