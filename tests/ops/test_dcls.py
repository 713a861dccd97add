"""dcls: loop-built reference kernel, dilated-conv identity at integer positions, clamping, position gradients, peer."""

from __future__ import annotations

import itertools
import logging
import math

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.testing import check_dense_kernel, check_op_contract, make_contract_op


def reference_kernel(op) -> torch.Tensor:
    """The DCLS kernel by loops over taps and grid points, float64, from the paper's interpolation formulas."""
    weight = op.weight.detach().double()
    positions = op.positions.detach().double()
    sigma = None if op.sigma is None else op.sigma.detach().double()
    sizes = op.kernel_size
    c_out, c_in, taps = weight.shape
    kernel = torch.zeros(c_out, c_in, *sizes, dtype=torch.float64)
    for o, i, t in itertools.product(range(c_out), range(c_in), range(taps)):
        values = {}
        for u in itertools.product(*(range(k) for k in sizes)):
            value = 1.0
            for d, k in enumerate(sizes):
                half = k // 2
                p = min(max(positions[d, o, i, t].item(), -half), half)
                x = (u[d] - half) - p
                if op.interpolation == "bilinear":
                    value *= max(0.0, 1 - abs(x))
                else:
                    s = abs(sigma[d, o, i, t].item()) + 0.27
                    value *= math.exp(-0.5 * (x / s) ** 2)
            values[u] = value
        total = sum(values.values()) + 1e-7
        for u, value in values.items():
            kernel[(o, i, *u)] += weight[o, i, t].item() * value / total
    return kernel


def _randomize_(op, spread: float) -> None:
    with torch.no_grad():
        op.positions.uniform_(-spread, spread)
        if op.sigma is not None:
            op.sigma.uniform_(-0.6, 0.6)


@pytest.mark.parametrize("interpolation", ["bilinear", "gaussian"])
@pytest.mark.parametrize(("dim", "kernel"), [(1, 7), (2, (5, 3)), (3, 3)])
def test_kernel_matches_the_loop_reference(interpolation, dim, kernel):
    torch.manual_seed(0)
    op = create_op("dcls", 4, 6, kernel, dim=dim, kernel_count=3, groups=2, interpolation=interpolation).double()
    _randomize_(op, 3.0)  # some positions fall outside the kernel and are clamped to its edge
    torch.testing.assert_close(op.kernel().detach(), reference_kernel(op), rtol=1e-12, atol=1e-12)
    check_dense_kernel(op, (9,) * dim)


def test_integer_positions_on_a_lattice_give_the_dilated_conv():
    # 9 taps at {-2, 0, 2}²: bilinear interpolation puts each weight on exactly one grid point
    op = create_op("dcls", 3, 4, 5, kernel_count=9, bias=False).double()
    lattice = torch.tensor(list(itertools.product((-2.0, 0.0, 2.0), repeat=2)), dtype=torch.float64)  # (9, 2)
    with torch.no_grad():
        op.positions.copy_(lattice.t()[:, None, None, :].expand(2, 4, 3, 9))
    x = torch.randn(2, 3, 8, 9, dtype=torch.float64)
    dilated = F.conv2d(x, op.weight.detach().view(4, 3, 3, 3), padding=2, dilation=2)
    torch.testing.assert_close(op(x), dilated, rtol=1e-6, atol=1e-6)


def test_gradient_reaches_positions_and_widths_and_stops_at_the_clamp():
    torch.manual_seed(0)
    op = create_op("dcls", 2, 2, 7, kernel_count=4, interpolation="gaussian")
    with torch.no_grad():
        op.positions.uniform_(-2.3, 2.3)
        op.positions[0, 0, 0, 0] = 10.0  # far outside the 7-wide kernel: clamped to its edge, 3
    x = torch.randn(2, 2, 9, 9)
    y = op(x)
    (y * torch.randn_like(y)).sum().backward()
    grad = op.positions.grad
    assert grad[0, 0, 0, 0] == 0
    assert (grad.flatten()[1:] != 0).all() and (op.sigma.grad != 0).all()
    with torch.no_grad():
        edge = op.kernel().clone()
        op.positions[0, 0, 0, 0] = 3.0
        torch.testing.assert_close(op.kernel(), edge)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    op = make_contract_op("dcls", dim=dim, stride=stride)
    check_op_contract(op, (size,) * dim, make_contract_op("dcls", dim=dim, stride=stride, seed=1))
    check_dense_kernel(op, (size,) * dim)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_depthwise_2d_runs_in_the_input_memory_format(memory_format):
    op = create_op("dcls", 8, 8, 5, kernel_count=4, groups=8)
    x = torch.randn(2, 8, 6, 6)
    y = op(x.contiguous(memory_format=memory_format))
    assert y.is_contiguous(memory_format=memory_format)
    torch.testing.assert_close(y, op(x), rtol=1e-5, atol=1e-5)
    check_dense_kernel(op, (6, 6))


def test_bad_options_raise_with_the_op_name():
    with pytest.raises(ValueError, match=r"dcls: kernel_count must be a positive int, got 0"):
        create_op("dcls", 4, 4, kernel_count=0)
    with pytest.raises(ValueError, match=r"dcls: interpolation must be one of \('bilinear', 'gaussian'\), got 'cubic'"):
        create_op("dcls", 4, 4, interpolation="cubic")
    with pytest.raises(ValueError, match=r"dcls: in_channels \(4\) and out_channels \(6\) must both be divisible"):
        create_op("dcls", 4, 6, groups=4)
    with pytest.raises(ValueError, match=r"dcls: kernel_size must be odd"):
        create_op("dcls", 4, 4, 4)


@pytest.mark.peer
@pytest.mark.parametrize(("interpolation", "version"), [("bilinear", "v1"), ("gaussian", "gauss")])
@pytest.mark.parametrize("dim", [1, 2])
def test_matches_the_official_package(interpolation, version, dim):
    modules = pytest.importorskip("DCLS.construct.modules")
    torch.manual_seed(0)
    size = 7
    op = create_op("dcls", 4, 6, size, dim=dim, kernel_count=5, groups=2, interpolation=interpolation).double()
    _randomize_(op, 2.9)
    logging.disable(logging.WARNING)  # the package logs its backend choice
    try:
        options = {"padding": size // 2, "dilated_kernel_size": size, "groups": 2, "version": version}
        if dim == 1:
            package = modules.Dcls1d(4, 6, 5, **options)
        else:
            package = modules.Dcls2d(4, 6, 5, use_implicit_gemm=False, **options)
    finally:
        logging.disable(logging.NOTSET)
    package = package.double()
    with torch.no_grad():
        package.weight.copy_(op.weight)
        package.bias.copy_(op.bias)
        package.P.copy_(op.positions.flip(0))  # the package's first row is the last axis
        if op.sigma is not None:
            package.SIG.copy_(op.sigma.flip(0))
    x = torch.randn(2, 4, *(11,) * dim, dtype=torch.float64)
    torch.testing.assert_close(op(x), package(x), rtol=1e-10, atol=1e-10)
