"""Kernel networks of continuous-kernel convolutions (S117 CCNN, S27 FlexConv): relative positions → kernel values.

A kernel network maps a point ``p ∈ [-1, 1]^d`` of the kernel's support to ``out_channels`` kernel values. Sampled
on a grid of any size it gives a discrete kernel of that size, so a continuous-kernel convolution has the same
parameters at every resolution. Both networks follow the official david-knigge/ccnn code (``ckconv/nn/ck``):

- :class:`SIREN` (Sitzmann et al. 2020, used by CKConv): ``no_layers`` linear layers; every layer but the last
  is ``sin(ω₀ (W x + b))``. First layer ``W ~ U(±1/d)``, hidden ``W ~ U(±√(6/h)/ω₀)``, biases 0; the last layer is
  Kaiming-uniform (linear gain) with bias 0.
- :class:`MAGNet` (multiplicative anisotropic Gabor network, FlexConv): ``no_layers + 1`` Gabor filters
  ``g_l(x) = exp(-½ Σ_d (γ_ld (x_d − μ_ld))²) · sin(W_l x + b_l)``, combined multiplicatively
  ``z_0 = g_0(x)``, ``z_l = g_l(x) ⊙ (U_l z_{l−1} + c_l)``, output ``V z_L + e``. ``γ ~ Gamma(α/(l+1), β)`` with
  ``α = 6, β = 1``; ``μ ~ U(±init_spatial_value)``; ``W_l`` is PyTorch's default linear init scaled by
  ``2π ω₀ γ_l`` with ``b_l = 0``; ``U_l`` Kaiming-uniform (linear gain) with ``c_l = 1``; ``V`` Kaiming-uniform,
  ``e = 0``.

Both take positions ``(P, d)`` and return ``(P, out_channels)``: a linear layer on a point list is exactly the
1×1 convolution the official code applies to the grid.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["SIREN", "MAGNet", "relative_positions", "KERNEL_NETS"]


def relative_positions(size: tuple[int, ...], *, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """Grid of relative positions ``(*size, d)``: ``linspace(-1, 1, s)`` along each dim (a side of 1 sits at 0)."""
    axes = [
        torch.zeros(1, dtype=dtype, device=device) if s == 1 else torch.linspace(-1, 1, s, dtype=dtype, device=device)
        for s in size
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (*size, d)


class SIREN(nn.Module):
    """SIREN kernel network (Sitzmann et al. 2020) as used by CKConv: ``(P, d) → (P, out_channels)``."""

    def __init__(self, data_dim: int, out_channels: int, hidden: int = 32, no_layers: int = 3, omega_0: float = 30.0):
        super().__init__()
        if no_layers < 2:
            raise ValueError(f"SIREN: no_layers must be at least 2 (input and output layers), got {no_layers!r}")
        widths = [data_dim] + [hidden] * (no_layers - 1)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.output_linear = nn.Linear(hidden, out_channels)
        self.omega_0 = float(omega_0)
        with torch.no_grad():
            for index, layer in enumerate(self.hidden):
                bound = 1.0 / data_dim if index == 0 else math.sqrt(6.0 / hidden) / self.omega_0
                layer.weight.uniform_(-bound, bound)
                layer.bias.zero_()
            nn.init.kaiming_uniform_(self.output_linear.weight, nonlinearity="linear")
            self.output_linear.bias.zero_()

    def forward(self, positions: Tensor) -> Tensor:
        z = positions
        for layer in self.hidden:
            z = torch.sin(self.omega_0 * layer(z))  # (P, hidden)
        return self.output_linear(z)

    def extra_repr(self) -> str:
        return f"omega_0={self.omega_0}"


class MAGNet(nn.Module):
    """Multiplicative anisotropic Gabor network (FlexConv, S27; CCNN, S117): ``(P, d) → (P, out_channels)``."""

    def __init__(
        self,
        data_dim: int,
        out_channels: int,
        hidden: int = 32,
        no_layers: int = 3,
        omega_0: float = 2.0,
        *,
        alpha: float = 6.0,
        beta: float = 1.0,
        init_spatial_value: float = 1.0,
    ):
        super().__init__()
        if no_layers < 1:
            raise ValueError(f"MAGNet: no_layers must be at least 1, got {no_layers!r}")
        self.omega_0 = float(omega_0)
        filters = no_layers + 1
        self.mu = nn.Parameter(init_spatial_value * (2 * torch.rand(filters, hidden, data_dim) - 1))
        # Gamma(concentration α/(l+1), rate β); argument checks off so the net also builds on the meta device
        gammas = [
            torch.distributions.Gamma(alpha / (layer + 1), beta, validate_args=False).sample((hidden, data_dim))
            for layer in range(filters)
        ]
        self.gamma = nn.Parameter(torch.stack(gammas))  # (L + 1, h, d)
        self.filter_linears = nn.ModuleList(nn.Linear(data_dim, hidden) for _ in range(filters))
        self.linears = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(no_layers))
        self.output_linear = nn.Linear(hidden, out_channels)
        with torch.no_grad():
            for layer, linear in enumerate(self.filter_linears):
                linear.weight.mul_(2 * math.pi * self.omega_0 * self.gamma[layer])
                linear.bias.zero_()
            for linear in self.linears:
                nn.init.kaiming_uniform_(linear.weight, nonlinearity="linear")
                linear.bias.fill_(1.0)
            nn.init.kaiming_uniform_(self.output_linear.weight, nonlinearity="linear")
            self.output_linear.bias.zero_()

    def gabor(self, positions: Tensor, layer: int) -> Tensor:
        """The ``layer``-th anisotropic Gabor filter at ``positions (P, d)``: ``(P, hidden)``."""
        offset = positions[:, None, :] - self.mu[layer]  # (P, h, d)
        window = torch.exp(-0.5 * ((self.gamma[layer] * offset) ** 2).sum(-1))  # (P, h)
        return window * torch.sin(self.filter_linears[layer](positions))

    def forward(self, positions: Tensor) -> Tensor:
        z = self.gabor(positions, 0)
        for layer, linear in enumerate(self.linears, start=1):
            z = self.gabor(positions, layer) * linear(z)  # (P, hidden)
        return self.output_linear(z)

    def extra_repr(self) -> str:
        return f"omega_0={self.omega_0}"


KERNEL_NETS = {"siren": SIREN, "magnet": MAGNet}
