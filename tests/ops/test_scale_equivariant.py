"""Scale-equivariant Fourier layers (S103): down-scaling reference, circular-conv identity, zero equivariance error."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.ops.scale_equivariant import ScaleEquivariantNonlinearity, fourier_downscale
from convzoo.testing import check_op_contract


def _dft_downscale_1d(x, m):
    """Explicit sums: X[f] = mean_n x[n] e^{-2 pi i f n / S}, y[t] = sum_{|f| <= (m-1)//2} X[f] e^{2 pi i f t / m}."""
    s = x.shape[-1]
    keep = (m - 1) // 2
    n = torch.arange(s, dtype=torch.float64)
    t = torch.arange(m, dtype=torch.float64)
    y = torch.zeros(*x.shape[:-1], m, dtype=torch.complex128)
    for f in range(-keep, keep + 1):
        coefficient = (x * torch.exp(-2j * math.pi * f * n / s)).mean(-1, keepdim=True)
        y = y + coefficient * torch.exp(2j * math.pi * f * t / m)
    return y.real


@pytest.mark.parametrize(("size", "target"), [(9, 5), (8, 4), (7, 6), (10, 10), (6, 1)])
def test_downscale_matches_explicit_dft(size, target):
    x = torch.randn(2, 3, size, size + 1, dtype=torch.float64)
    # separable: apply the 1D reference on the last axis, then on the one before
    expected = _dft_downscale_1d(_dft_downscale_1d(x, target).transpose(-1, -2), target).transpose(-1, -2)
    torch.testing.assert_close(fourier_downscale(x, target), expected)


def test_downscale_samples_a_band_limited_signal_at_the_new_rate():
    phase = 0.4
    fine = torch.cos(2 * math.pi * 2 * torch.arange(16, dtype=torch.float64) / 16 + phase).view(1, 1, 16)
    coarse = torch.cos(2 * math.pi * 2 * torch.arange(7, dtype=torch.float64) / 7 + phase).view(1, 1, 7)
    torch.testing.assert_close(fourier_downscale(fine, 7), coarse)
    # composition: D_{7->5} D_{16->7} = D_{16->5}
    torch.testing.assert_close(fourier_downscale(fourier_downscale(fine, 7), 5), fourier_downscale(fine, 5))


def test_scale_conv_at_the_reference_resolution_is_circular_cross_correlation():
    conv = create_op("scale_conv", 3, 4, 5, max_size=9).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    expected = F.conv2d(F.pad(x, (2, 2, 2, 2), mode="circular"), conv.weight, conv.bias)
    expected = expected + torch.einsum("oi,nihw->nohw", conv.pointwise, x)
    torch.testing.assert_close(conv(x), expected)


@pytest.mark.parametrize(("dim", "size", "targets"), [(1, 20, (5, 8, 13)), (2, 12, (5, 8, 11)), (3, 8, (3, 6))])
def test_scale_conv_commutes_with_downscaling(dim, size, targets):
    conv = create_op("scale_conv", 2, 3, 3, dim=dim, max_size=15).double()
    x = torch.randn(2, 2, *(size,) * dim, dtype=torch.float64)
    for m in targets:
        torch.testing.assert_close(conv(fourier_downscale(x, m)), fourier_downscale(conv(x), m), rtol=0, atol=1e-12)


def test_strided_scale_conv_commutes_with_downscaling():
    conv = create_op("scale_conv", 2, 3, 5, 2, max_size=28).double()
    x = torch.randn(2, 2, 13, 13, dtype=torch.float64)
    for m in (6, 9, 12):
        torch.testing.assert_close(conv(fourier_downscale(x, m)), fourier_downscale(conv(x), -(-m // 2)))


@pytest.mark.parametrize("dim", [1, 2])
def test_nonlinearity_has_zero_equivariance_error(dim):
    nonlinearity = ScaleEquivariantNonlinearity(base_size=5)
    x = torch.randn(2, 3, *(14,) * dim, dtype=torch.float64)
    for m in (5, 6, 9, 12, 14):
        got = nonlinearity(fourier_downscale(x, m))
        torch.testing.assert_close(got, fourier_downscale(nonlinearity(x), m), rtol=0, atol=1e-12)


def test_stack_is_scale_equivariant_and_pointwise_relu_is_not():
    torch.manual_seed(0)
    first = create_op("scale_conv", 1, 4, 5, max_size=28).double()
    second = create_op("scale_conv", 4, 4, 5, 2, max_size=28).double()
    act = ScaleEquivariantNonlinearity(torch.tanh, base_size=5)

    def net(x):
        return act(second(act(first(x))))

    def plain(x):
        return torch.relu(second(torch.relu(first(x))))

    x = torch.randn(2, 1, 16, 16, dtype=torch.float64)
    for m in (10, 13):
        expected = fourier_downscale(net(x), -(-m // 2))
        torch.testing.assert_close(net(fourier_downscale(x, m)), expected, rtol=0, atol=1e-12)
        error = (plain(fourier_downscale(x, m)) - fourier_downscale(plain(x), -(-m // 2))).abs().max()
        assert error > 1e-2  # a pointwise activation aliases: the check can fail


def test_nonlinearity_is_the_plain_activation_below_the_base_resolution():
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)  # odd size <= base: one resolution, no truncation
    torch.testing.assert_close(ScaleEquivariantNonlinearity(base_size=7)(x), torch.relu(x))


def test_nonlinearity_gradients_flow():
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64, requires_grad=True)
    ScaleEquivariantNonlinearity(F.gelu, base_size=3)(x).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_scale_equivariant_bad_arguments():
    with pytest.raises(ValueError, match=r"scale_conv: max_size must be an int >= kernel_size, got 3"):
        create_op("scale_conv", 2, 2, 5, max_size=3)
    with pytest.raises(ValueError, match=r"scale_eq_nonlinearity: base_size must be a positive int, got 0"):
        ScaleEquivariantNonlinearity(base_size=0)
    with pytest.raises(ValueError, match=r"scale_eq_nonlinearity: expected \(N, C, \*S\) with one size"):
        ScaleEquivariantNonlinearity()(torch.randn(1, 2, 6, 7))
    with pytest.raises(ValueError, match=r"fourier_downscale: size must lie in \[1, input size\] per axis"):
        fourier_downscale(torch.randn(1, 1, 5, 5), 6)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    # kind "equivariant" keeps it out of the registry-wide grid contract, but it takes (N, C, *S) like a grid op
    def make(seed):
        torch.manual_seed(seed)
        return create_op("scale_conv", 8, 16, 3, stride, dim=dim, max_size=9)

    check_op_contract(make(0), (size,) * dim, fresh=make(1))
