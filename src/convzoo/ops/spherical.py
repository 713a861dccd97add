"""Spherical CNN convolution (S79, Esteves et al., "Scaling Spherical CNNs"): spectral convolution with zonal filters.

A spherical convolution of a signal ``f`` with a zonal (axially symmetric) filter ``k`` multiplies every
spherical-harmonic coefficient of ``f`` by one number per degree (Driscoll & Healy's convolution theorem):
``(f ⋆ k)_ℓm = 2π √(4π / (2ℓ + 1)) k_ℓ0 · f_ℓm``. Per channel pair the learned filter is that per-degree gain
``w[o, i, ℓ]`` (the constant folded in), so a layer is

    y = SHT⁻¹( Σ_i w[o, i, ℓ] · SHT(x_i)_ℓm ) + b_o

with the forward and inverse transforms from ``torch-harmonics`` (``pip install convzoo[graph]``). As in
Esteves et al. (2018, 2023) the gains are smooth in ℓ, which makes the filters localised: ``kernel_size``
anchor values per channel pair, linearly interpolated over the degrees. Stride 2 is spectral pooling: the
coefficients up to the coarser grid's band limit are synthesised on a grid of half the resolution.

Departures: "Scaling Spherical CNNs" uses spin-weighted convolutions (spin-weighted transforms for vector
features) and JAX/TPU kernels; this op is the scalar (spin-0) zonal case. It commutes with every rotation of
the sphere for band-limited signals; on a finite equiangular grid a rotation that is not a longitude shift
brings aliasing of the input's content above the band limit (tests/ops/test_spherical.py measures both).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_choice, check_int
from convzoo.registry import OPS

__all__ = ["SphericalConv", "require_torch_harmonics"]

NAME = "spherical"
GRIDS = ("equiangular", "legendre-gauss")


def require_torch_harmonics():
    try:
        import torch_harmonics
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{NAME}: needs torch-harmonics for spherical harmonic transforms; install it with "
            "`pip install convzoo[graph]` (or `pip install torch-harmonics`)"
        ) from error
    return torch_harmonics


@OPS.register(NAME, kind="equivariant", dims=(2,), papers=("spherical-cnn",))
class SphericalConv(nn.Module):
    """Spherical CNN (S79): zonal-filter spectral convolution via torch-harmonics, rotation-equivariant to the grid.

    Input ``(N, C_in, nlat, nlon)`` on an equiangular (or Gauss–Legendre) latitude–longitude grid, output
    ``(N, C_out, nlat / stride, nlon / stride)``. ``kernel_size`` is the number of spectral anchors per channel
    pair (the filter's degrees of freedom; more anchors, less localised); ``stride`` 1 or 2 (spectral pooling);
    ``lmax`` the band limit of the transform (default: torch-harmonics' limit for the grid).
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
        nlat=32,
        nlon=64,
        grid="equiangular",
        lmax=None,
    ):
        super().__init__()
        th = require_torch_harmonics()
        check_int(in_channels, "in_channels", NAME)
        check_int(out_channels, "out_channels", NAME)
        self.anchors = check_int(kernel_size, "kernel_size (spectral anchors)", NAME)
        self.stride = check_int(stride, "stride", NAME, high=2)
        check_int(dim, "dim", NAME, low=2, high=2)
        check_int(nlat, "nlat", NAME, low=2)
        check_int(nlon, "nlon", NAME, low=2)
        self.grid = check_choice(grid, GRIDS, "grid", NAME)
        if nlat % self.stride or nlon % self.stride:
            raise ValueError(f"{NAME}: nlat and nlon must be divisible by stride {stride}, got {nlat}×{nlon}")
        limit = (nlat + 1) // 2 if grid == "equiangular" else nlat
        self.lmax = limit if lmax is None else check_int(lmax, "lmax", NAME, high=limit)
        self.nlat, self.nlon, self.in_channels, self.out_channels = nlat, nlon, in_channels, out_channels
        out_lat, out_lon = nlat // self.stride, nlon // self.stride
        out_limit = (out_lat + 1) // 2 if grid == "equiangular" else out_lat
        self.out_lmax = min(self.lmax, out_limit, out_lon // 2 + 1)
        self.sht = th.RealSHT(nlat, nlon, lmax=self.lmax, mmax=min(self.lmax, nlon // 2 + 1), grid=grid)
        self.isht = th.InverseRealSHT(out_lat, out_lon, lmax=self.out_lmax, mmax=self.out_lmax, grid=grid)
        # anchor gains (C_out, C_in, anchors): the filter's spectrum at evenly spaced degrees
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.anchors) / math.sqrt(in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def spectrum(self) -> Tensor:
        """Per-degree gains ``(C_out, C_in, out_lmax)``, linear between the anchors (one anchor: constant)."""
        if self.anchors == 1:
            return self.weight.expand(-1, -1, self.out_lmax)
        return F.interpolate(self.weight, size=self.out_lmax, mode="linear", align_corners=True)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels or x.shape[2:] != (self.nlat, self.nlon):
            raise ValueError(
                f"{NAME}: expected (N, {self.in_channels}, nlat={self.nlat}, nlon={self.nlon}), got {tuple(x.shape)}"
            )
        coefficients = self.sht(x)[..., : self.out_lmax, : self.out_lmax]  # (N, C_in, ℓ, m) complex
        gains = self.spectrum().to(coefficients.real.dtype)  # (C_out, C_in, ℓ)
        mixed = torch.einsum("oil,nilm->nolm", gains.to(coefficients.dtype), coefficients)  # (N, C_out, ℓ, m)
        y = self.isht(mixed).to(x.dtype)  # (N, C_out, nlat / stride, nlon / stride)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, anchors={self.anchors}, stride={self.stride}, "
            f"grid={self.grid} {self.nlat}×{self.nlon}, lmax={self.lmax}"
        )
