"""Kolmogorov-Arnold convolutions (S64): a learnable 1-D function on every (out, in, tap) edge, N-d.

Each edge applies ``φ_{o,i,t}(v) = w_b[o,i,t] · silu(v) + Σ_j c[o,i,t,j] · B_j(v)`` to the input value it sees,
and the output sums the edges: ``y[o, p] = b[o] + Σ_{i,t} φ_{o,i,t}(x[i, p·s + t − k//2])``. Because the basis
functions ``B_j`` are shared by all edges, the sum is a convolution of the basis maps ``B_j(x)`` (plus one of
``silu(x)``), which is how it is computed. The bases (``basis=``), with the defaults of the official
IvanDrokin/torch-conv-kan layers:

- ``"bspline"`` (KANConv): B-splines of order ``spline_order`` = 3 on ``grid_size`` = 5 uniform intervals of
  ``grid_range`` = (-1, 1), extended by ``spline_order`` knots each side (``grid_size + spline_order`` bases);
- ``"chebyshev"`` (KACN): ``T_j(tanh v)``, ``j = 0..degree`` (3);
- ``"gram"`` (KAGN): ``silu(P_j(tanh v))`` with the learnable three-term recurrence ``P_0 = 1``, ``P_1 = t``,
  ``P_n = t P_{n−1} − β(n−1, n) P_{n−2}``, ``β(n, m) = β_n · (m+n)(m−n) n² (4n²−1) / m²`` (``β_n`` learnable);
- ``"wavelet"`` (WavKAN): one wavelet per (out, in) pair, ``ψ((v − τ_oi) / s_oi)`` with learnable translation
  ``τ`` (init 0) and scale ``s`` (init 1); ``wavelet=`` ``"mexican_hat"`` (default), ``"morlet"`` or ``"dog"``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.conv import conv_nd, same_padding
from convzoo.core.validate import check_choice, is_int
from convzoo.ops.base import Op
from convzoo.registry import OPS

__all__ = ["KANConv", "bspline_basis", "chebyshev_basis", "gram_basis", "wavelet"]

BASES = ("bspline", "chebyshev", "gram", "wavelet")
WAVELETS = ("mexican_hat", "morlet", "dog")


def bspline_basis(x: Tensor, knots: Tensor, order: int) -> Tensor:
    """Cox–de Boor B-spline bases of ``order`` on ``knots`` (uniform, ascending): ``(...,) → (..., K − order − 1)``."""
    v = x.unsqueeze(-1)  # (..., 1)
    bases = ((v >= knots[:-1]) & (v < knots[1:])).to(x.dtype)  # (..., K − 1): order 0
    for k in range(1, order + 1):
        left = (v - knots[: -(k + 1)]) / (knots[k:-1] - knots[: -(k + 1)])
        right = (knots[k + 1 :] - v) / (knots[k + 1 :] - knots[1:-k])
        bases = left * bases[..., :-1] + right * bases[..., 1:]  # (..., K − 1 − k)
    return bases


def chebyshev_basis(x: Tensor, degree: int) -> Tensor:
    """``T_j(tanh x)``, ``j = 0..degree``, by ``T_{j+1} = 2t T_j − T_{j−1}``: ``(...,) → (..., degree + 1)``."""
    t = torch.tanh(x)
    terms = [torch.ones_like(t), t]
    for _ in range(2, degree + 1):
        terms.append(2 * t * terms[-1] - terms[-2])
    return torch.stack(terms[: degree + 1], dim=-1)


def gram_basis(x: Tensor, beta_weights: Tensor) -> Tensor:
    """``silu(P_j(tanh x))``, ``j = 0..degree``, with KAGN's learnable recurrence: ``(...,) → (..., degree + 1)``."""
    degree = beta_weights.numel() - 1
    t = torch.tanh(x)
    terms = [torch.ones_like(t), t]
    for m in range(2, degree + 1):
        n = m - 1
        beta = beta_weights[n] * (m + n) * (m - n) * n**2 * (4.0 * n**2 - 1.0) / m**2
        terms.append(t * terms[-1] - beta * terms[-2])
    return F.silu(torch.stack(terms[: degree + 1], dim=-1))


def wavelet(u: Tensor, kind: str) -> Tensor:
    """Mother wavelets of WavKAN: Mexican hat, Morlet (ω₀ = 5, real part) and derivative of Gaussian."""
    if kind == "mexican_hat":
        return 2 / (math.sqrt(3) * math.pi**0.25) * (u**2 - 1) * torch.exp(-0.5 * u**2)
    if kind == "morlet":
        return torch.cos(5.0 * u) * torch.exp(-0.5 * u**2)
    return -u * torch.exp(-0.5 * u**2)


@OPS.register("kan", kind="grid", dims=(1, 2, 3), papers=("kan-conv",), linear=False, dynamic=False)
class KANConv(Op):
    """KAN convolution (S64, Kolmogorov-Arnold Convolutions: Design Principles and Empirical Studies).

    Input ``(N, C_in, *S)`` → ``(N, C_out, *ceil(S / stride))``; every edge ``(o, i, t)`` applies
    ``φ(v) = w_b · silu(v) + Σ_j c_j B_j(v)`` (see the module docstring for the bases and their defaults).
    Parameters: ``base_weight (C_out, C_in, *k)``; ``coefficients (C_out, C_in, J, *k)`` (``(C_out, C_in, *k)``
    for wavelets, plus ``scale``/``translation (C_out, C_in)``); ``beta_weights (degree + 1,)`` for Gram.
    Padded taps contribute nothing (the basis maps are zero-padded, as in the official code).

    Departures from the official layers: no InstanceNorm/BatchNorm, PReLU or dropout after the sum (a block
    adds its own); the SiLU base branch of the original KAN is used for every basis (torch-conv-kan's B-spline
    layer uses GELU and its Chebyshev layer has no base branch); the per-edge spline scale ``w_s`` is folded into
    the coefficients; the wavelet layer has no extra 1×1 ``wavelet_out`` mixing; groups are not offered.
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
        basis: str = "bspline",
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        degree: int = 3,
        wavelet: str = "mexican_hat",
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, dim=dim, bias=bias)
        name = type(self).registry_name
        check_choice(basis, BASES, "basis", name)
        for what, value, low in (("grid_size", grid_size, 1), ("spline_order", spline_order, 0), ("degree", degree, 0)):
            if not is_int(value) or value < low:
                raise ValueError(f"{name}: {what} must be an int >= {low}, got {value!r}")
        low_high = tuple(grid_range) if isinstance(grid_range, tuple | list) else ()
        if len(low_high) != 2 or not low_high[0] < low_high[1]:
            raise ValueError(f"{name}: grid_range must be a pair (low, high) with low < high, got {grid_range!r}")
        check_choice(wavelet, WAVELETS, "wavelet", name)
        self.basis, self.wavelet_kind = basis, wavelet
        self.grid_size, self.spline_order, self.degree = grid_size, spline_order, degree
        k = self.kernel_size
        taps = math.prod(k)
        self.base_weight = nn.Parameter(torch.empty(out_channels, in_channels, *k))
        nn.init.kaiming_uniform_(self.base_weight, nonlinearity="linear")
        if basis == "bspline":
            # knots are rebuilt in the input's dtype at each call, so float64 runs see exact float64 knots
            self.grid_low, self.grid_step = float(low_high[0]), (float(low_high[1]) - float(low_high[0])) / grid_size
            self.coefficients = nn.Parameter(torch.empty(out_channels, in_channels, grid_size + spline_order, *k))
            nn.init.kaiming_uniform_(self.coefficients.flatten(1, 2), nonlinearity="linear")
        elif basis in ("chebyshev", "gram"):
            self.coefficients = nn.Parameter(torch.empty(out_channels, in_channels, degree + 1, *k))
            if basis == "chebyshev":
                nn.init.normal_(self.coefficients, std=1 / (in_channels * (degree + 1) * taps))
            else:
                nn.init.kaiming_uniform_(self.coefficients.flatten(1, 2), nonlinearity="linear")
                self.beta_weights = nn.Parameter(torch.randn(degree + 1) / (taps * in_channels * (degree + 1)))
        else:
            self.coefficients = nn.Parameter(torch.empty(out_channels, in_channels, *k))
            nn.init.kaiming_uniform_(self.coefficients, nonlinearity="linear")
            self.scale = nn.Parameter(torch.ones(out_channels, in_channels))
            self.translation = nn.Parameter(torch.zeros(out_channels, in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def basis_maps(self, x: Tensor) -> Tensor:
        """``B_j(x)`` for the shared bases: ``(N, C_in, *S) → (N, C_in, J, *S)``."""
        if self.basis == "bspline":
            order = self.spline_order
            steps = torch.arange(-order, self.grid_size + order + 1, dtype=x.dtype, device=x.device)
            values = bspline_basis(x, self.grid_low + self.grid_step * steps, order)
        elif self.basis == "chebyshev":
            values = chebyshev_basis(x, self.degree)
        else:
            values = gram_basis(x, self.beta_weights)
        return values.movedim(-1, 2)  # (N, C_in, J, *S)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        padding = same_padding(self.kernel_size)
        y = conv_nd(F.silu(x), self.base_weight, self.bias, stride=self.stride, padding=padding)
        if self.basis == "wavelet":
            shape = (1, self.out_channels, self.in_channels) + (1,) * self.dim
            u = (x.unsqueeze(1) - self.translation.view(shape)) / self.scale.view(shape)  # (N, C_out, C_in, *S)
            maps = wavelet(u, self.wavelet_kind).flatten(1, 2)  # (N, C_out · C_in, *S)
            weight = self.coefficients  # (C_out, C_in, *k), one group per output channel
            return y + conv_nd(maps, weight, stride=self.stride, padding=padding, groups=self.out_channels)
        maps = self.basis_maps(x).flatten(1, 2)  # (N, C_in · J, *S)
        weight = self.coefficients.flatten(1, 2)  # (C_out, C_in · J, *k)
        return y + conv_nd(maps, weight, stride=self.stride, padding=padding)

    def extra_repr(self) -> str:
        extra = f", basis={self.basis}"
        if self.basis == "bspline":
            extra += f", grid_size={self.grid_size}, spline_order={self.spline_order}"
        elif self.basis == "wavelet":
            extra += f", wavelet={self.wavelet_kind}"
        else:
            extra += f", degree={self.degree}"
        return super().extra_repr() + extra
