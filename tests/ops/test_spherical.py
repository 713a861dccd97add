"""Spherical CNN (S79): rotating the input rotates the output, exactly for longitude shifts and to the grid's
band-limit error for general rotations (e3nn's real harmonics give band-limited signals and exact rotations)."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_op

th = pytest.importorskip("torch_harmonics", reason="the spherical CNN needs torch-harmonics (convzoo[graph])")
o3 = pytest.importorskip("e3nn.o3", reason="the rotation test evaluates e3nn's real spherical harmonics")
pytestmark = pytest.mark.peer

NLAT, NLON, DEGREE = 32, 64, 6


def _points(nlat: int, nlon: int) -> torch.Tensor:
    """Unit vectors of the equiangular grid's nodes ``(nlat, nlon, 3)`` (colatitude θ from pole to pole)."""
    from torch_harmonics.quadrature import precompute_latitudes, precompute_longitudes

    theta, _ = precompute_latitudes(nlat, grid="equiangular")
    phi = precompute_longitudes(nlon)
    theta, phi = torch.meshgrid(theta, phi, indexing="ij")
    return torch.stack([theta.sin() * phi.cos(), theta.sin() * phi.sin(), theta.cos()], dim=-1)


def _harmonics(points: torch.Tensor) -> torch.Tensor:
    irreps = o3.Irreps([(1, (l, 1)) for l in range(DEGREE + 1)])
    return o3.spherical_harmonics(irreps, points, normalize=True)  # (..., (DEGREE+1)²)


def _fit(signal: torch.Tensor, basis: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Least-squares harmonic coefficients ``(C, K)`` of grid signals ``(C, nlat, nlon)`` and the relative residual."""
    flat_basis = basis.reshape(-1, basis.shape[-1])  # (P, K)
    flat = signal.reshape(signal.shape[0], -1).T  # (P, C)
    coefficients = torch.linalg.lstsq(flat_basis, flat).solution  # (K, C)
    residual = (flat_basis @ coefficients - flat).norm() / flat.norm()
    return coefficients.T, residual.item()


def test_rotating_a_band_limited_input_rotates_the_output():
    torch.manual_seed(0)
    op = create_op("spherical", 2, 3, 4).double()  # 4 anchors; 32×64 grid, band limit 16
    basis = _harmonics(_points(NLAT, NLON).double())  # (nlat, nlon, K)
    coefficients = torch.randn(2, basis.shape[-1], dtype=torch.float64)  # degree ≤ 6 < band limit
    irreps = o3.Irreps([(1, (l, 1)) for l in range(DEGREE + 1)])
    output = op((basis @ coefficients.T).permute(2, 0, 1)[None])[0]  # (3, nlat, nlon)
    out_coefficients, residual = _fit(output, basis)
    assert residual < 1e-10  # a zonal filter keeps the signal inside degree 6
    for seed in range(3):
        torch.manual_seed(seed)
        wigner = irreps.D_from_matrix(o3.rand_matrix(dtype=torch.float64))  # (K, K), exact in e3nn's basis
        rotated_input = (basis @ (coefficients @ wigner.T).T).permute(2, 0, 1)[None]
        expected = (basis @ (out_coefficients @ wigner.T).T).permute(2, 0, 1)  # the output, rotated
        error = (op(rotated_input)[0] - expected).abs().max() / output.abs().max()
        assert error < 1e-6, f"rotation equivariance error {error:.2e}"


def test_longitude_shifts_commute_exactly_even_above_the_band_limit():
    torch.manual_seed(0)
    op = create_op("spherical", 3, 2, 3)
    x = torch.randn(2, 3, NLAT, NLON)  # white noise: far above the band limit
    for shift in (1, 7, 32):
        torch.testing.assert_close(op(x.roll(shift, -1)), op(x).roll(shift, -1), rtol=1e-4, atol=1e-5)


def test_stride_two_is_spectral_pooling_to_a_coarser_grid():
    torch.manual_seed(0)
    op = create_op("spherical", 1, 1, 1, stride=2, bias=False).double()  # one anchor: a constant gain
    with torch.no_grad():
        op.weight.fill_(1.0)
    fine, coarse = _harmonics(_points(NLAT, NLON).double()), _harmonics(_points(NLAT // 2, NLON // 2).double())
    coefficients = torch.randn(1, fine.shape[-1], dtype=torch.float64)
    pooled = op((fine @ coefficients.T).permute(2, 0, 1)[None])[0]
    torch.testing.assert_close(pooled, (coarse @ coefficients.T).permute(2, 0, 1), rtol=1e-8, atol=1e-8)


def test_gradients_and_errors():
    op = create_op("spherical", 2, 2, 3, nlat=8, nlon=16).double()
    x = torch.randn(1, 2, 8, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,))
    with pytest.raises(ValueError, match=r"spherical: expected \(N, 2, nlat=8, nlon=16\), got \(1, 2, 8, 8\)"):
        op(torch.randn(1, 2, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="spherical: stride must be"):
        create_op("spherical", 2, 2, stride=3)
    with pytest.raises(ValueError, match="spherical: grid must be one of"):
        create_op("spherical", 2, 2, grid="healpix")
