"""KAN convolution (S64): every basis against an independent unfold + per-edge function reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from convzoo.ops.base import create_op
from convzoo.testing import check_op_contract, make_contract_op


def _silu(v):
    return v / (1.0 + np.exp(-v))


def _edge_basis_values(op, v, o, i):
    """The list of basis values B_j(v) on edge (o, i) (wavelets: the one ψ), from textbook formulas."""
    if op.basis == "bspline":
        order, size = op.spline_order, op.grid_size
        step = 2.0 / size  # grid_range (-1, 1)
        knots = [-1.0 + (m - order) * step for m in range(size + 2 * order + 1)]
        out = []
        for j in range(size + order):
            element = BSpline.basis_element(knots[j : j + order + 2], extrapolate=False)
            out.append(np.nan_to_num(element(v), nan=0.0))
        return out
    if op.basis == "chebyshev":
        return [np.cos(j * np.arccos(np.tanh(v))) for j in range(op.degree + 1)]
    if op.basis == "gram":
        beta_w = op.beta_weights.detach().double().numpy()
        t = np.tanh(v)
        polys = [np.ones_like(t), t]
        for m in range(2, op.degree + 1):
            n = m - 1
            beta = ((m + n) * (m - n) * n**2) / (m**2 / (4.0 * n**2 - 1.0)) * beta_w[n]
            polys.append(t * polys[-1] - beta * polys[-2])
        return [_silu(p) for p in polys[: op.degree + 1]]
    u = (v - op.translation[o, i].item()) / op.scale[o, i].item()
    if op.wavelet_kind == "mexican_hat":
        return [2 / (math.sqrt(3) * math.pi**0.25) * (u**2 - 1) * np.exp(-(u**2) / 2)]
    if op.wavelet_kind == "morlet":
        return [np.cos(5 * u) * np.exp(-(u**2) / 2)]
    return [-u * np.exp(-(u**2) / 2)]


def _reference(op, x):
    """Unfold the NaN-padded input; apply φ_{o,i,t} to every value an edge sees; sum the edges."""
    x = x.double().numpy()
    n, c_in, *size = x.shape
    k, stride = op.kernel_size, op.stride
    pads = [(0, 0), (0, 0)] + [(kk // 2, kk // 2) for kk in k]
    padded = np.pad(x, pads, constant_values=np.nan)  # NaN marks taps outside the input
    out_size = [-(-s // st) for s, st in zip(size, stride, strict=True)]
    base_w = op.base_weight.detach().double().numpy()
    coef = op.coefficients.detach().double().numpy()
    y = np.zeros((n, op.out_channels, *out_size))
    for o, i in itertools.product(range(op.out_channels), range(c_in)):
        for tap in itertools.product(*(range(kk) for kk in k)):
            window = tuple(slice(t, t + st * m, st) for t, st, m in zip(tap, stride, out_size, strict=True))
            v = padded[(slice(None), i, *window)]  # (N, *out): the value edge (o, i, tap) sees at each output
            inside = ~np.isnan(v)
            v = np.nan_to_num(v)
            phi = base_w[(o, i, *tap)] * _silu(v)
            bases = _edge_basis_values(op, v, o, i)
            if op.basis == "wavelet":
                phi = phi + coef[(o, i, *tap)] * bases[0]
            else:
                phi = phi + sum(coef[(o, i, j, *tap)] * b for j, b in enumerate(bases))
            y[:, o] += np.where(inside, phi, 0.0)
    if op.bias is not None:
        y += op.bias.detach().double().numpy().reshape(1, -1, *[1] * len(size))
    return torch.from_numpy(y)


CASES = [(1, (9,), 1, 3), (1, (10,), 2, 5), (2, (6, 5), 1, 3), (2, (7, 6), 2, 3)]


@pytest.mark.parametrize("basis", ["bspline", "chebyshev", "gram", "wavelet"])
@pytest.mark.parametrize(("dim", "size", "stride", "kernel"), CASES)
def test_matches_unfold_per_edge_reference(basis, dim, size, stride, kernel):
    torch.manual_seed(0)
    op = create_op("kan", 2, 3, kernel, stride, dim=dim, basis=basis).double()
    with torch.no_grad():  # move every parameter off its initial value so each one matters
        op.bias.normal_()
        if basis == "gram":
            op.beta_weights.normal_(std=0.3)
        if basis == "wavelet":
            op.scale.uniform_(0.5, 1.5)
            op.translation.normal_(std=0.3)
    x = 1.2 * torch.randn(2, 2, *size, dtype=torch.float64)
    torch.testing.assert_close(op(x).detach(), _reference(op, x), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("kind", ["morlet", "dog"])
def test_other_wavelets(kind):
    torch.manual_seed(1)
    op = create_op("kan", 2, 2, 3, dim=1, basis="wavelet", wavelet=kind).double()
    x = torch.randn(1, 2, 8, dtype=torch.float64)
    torch.testing.assert_close(op(x).detach(), _reference(op, x), rtol=1e-9, atol=1e-10)


def test_bspline_bases_partition_unity_inside_the_grid():
    op = create_op("kan", 1, 1, 1, dim=1).double()
    v = torch.linspace(-0.999, 0.999, 101, dtype=torch.float64).view(1, 1, -1)
    total = op.basis_maps(v).sum(dim=2)
    torch.testing.assert_close(total, torch.ones_like(total))


def test_parameter_counts_follow_the_defaults():
    c_in, c_out, k = 4, 6, 3
    taps = k * k
    counts = {
        "bspline": c_out * c_in * taps * (1 + 5 + 3),  # base + grid_size + spline_order coefficients
        "chebyshev": c_out * c_in * taps * (1 + 4),
        "gram": c_out * c_in * taps * (1 + 4) + 4,  # + beta_weights
        "wavelet": c_out * c_in * taps * 2 + 2 * c_out * c_in,  # + scale and translation per (out, in)
    }
    for basis, expected in counts.items():
        op = create_op("kan", c_in, c_out, k, basis=basis, bias=False)
        assert sum(p.numel() for p in op.parameters()) == expected, basis


@pytest.mark.parametrize("basis", ["bspline", "chebyshev", "gram", "wavelet"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_contract(basis, dim):
    for stride in (1, 2):
        make_contract_op("kan", dim=dim, stride=stride)  # the registry-wide default (bspline) builds too
        torch.manual_seed(0)
        op = create_op("kan", 8, 16, 3, stride, dim=dim, basis=basis)
        fresh = create_op("kan", 8, 16, 3, stride, dim=dim, basis=basis)
        for side in (7, 8, 1):
            check_op_contract(op, (side,) * dim, fresh)


def test_bad_options_raise_with_names():
    with pytest.raises(ValueError, match="kan: basis must be one of"):
        create_op("kan", 2, 2, basis="fourier")
    with pytest.raises(ValueError, match="kan: grid_size must be an int >= 1, got 0"):
        create_op("kan", 2, 2, grid_size=0)
    with pytest.raises(ValueError, match="kan: grid_range must be a pair"):
        create_op("kan", 2, 2, grid_range=(1.0, -1.0))
    with pytest.raises(ValueError, match="kan: wavelet must be one of"):
        create_op("kan", 2, 2, basis="wavelet", wavelet="haar")
    with pytest.raises(ValueError, match="kan: expected 2 input channels"):
        create_op("kan", 2, 2)(torch.randn(1, 3, 5, 5))
    with pytest.raises(TypeError, match="kan: unknown option"):
        create_op("kan", 2, 2, groups=2)
