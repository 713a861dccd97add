"""smpconv: loop-built point kernel, one-hot identity, dense kernel, gradients to positions and radii, contract."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.testing import check_dense_kernel, check_op_contract, make_contract_op


def reference_kernel(op) -> torch.Tensor:
    """Σ_p w_p · max(0, 1 − ‖c − p‖₁ / r_p) at every grid point c = (−1 + 2u / (k − 1))_d, by loops, float64."""
    weights = op.weights.detach().double()
    positions = op.positions.detach().double()
    radius = op.radius.detach().double()
    kernel = torch.zeros(*weights.shape[:2], *op.kernel_size, dtype=torch.float64)
    for u in itertools.product(*(range(k) for k in op.kernel_size)):
        coordinate = [(-1 + 2 * ud / (k - 1)) if k > 1 else 0.0 for ud, k in zip(u, op.kernel_size, strict=True)]
        for p in range(op.n_points):
            distance = sum(abs(c - positions[p, d].item()) for d, c in enumerate(coordinate))
            influence = max(0.0, 1 - distance / max(radius[p].item(), 1e-3))
            kernel[(slice(None), slice(None), *u)] += weights[:, :, p] * influence
    return kernel


@pytest.mark.parametrize(("dim", "kernel", "groups"), [(1, 9, 1), (2, (5, 3), 2), (3, 3, 1)])
def test_kernel_matches_the_loop_reference(dim, kernel, groups):
    torch.manual_seed(0)
    op = create_op("smpconv", 4, 6, kernel, dim=dim, n_points=5, groups=groups).double()
    with torch.no_grad():
        op.weights.normal_()
        op.radius.uniform_(0.2, 1.2)
    torch.testing.assert_close(op.kernel().detach(), reference_kernel(op), rtol=1e-12, atol=1e-12)
    check_dense_kernel(op, (7,) * dim)


def test_a_point_on_a_grid_node_with_a_small_radius_is_a_one_hot_kernel():
    op = create_op("smpconv", 2, 3, 5, n_points=1, bias=False).double()
    with torch.no_grad():
        op.positions.copy_(torch.tensor([[-0.5, 1.0]]))  # grid node (row 1, column 4) of linspace(-1, 1, 5)
        op.radius.fill_(0.3)  # below the grid spacing 0.5: no other node is reached
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64)
    one_hot = torch.zeros(3, 2, 5, 5, dtype=torch.float64)
    one_hot[:, :, 1, 4] = op.weights.detach()[:, :, 0]
    torch.testing.assert_close(op(x), F.conv2d(x, one_hot, padding=2))


def test_positions_and_radii_get_gradients():
    torch.manual_seed(0)
    op = create_op("smpconv", 3, 3, 7, n_points=4)
    x = torch.randn(2, 3, 8, 8)
    y = op(x)
    (y * torch.randn_like(y)).sum().backward()
    assert (op.positions.grad != 0).all() and (op.radius.grad != 0).all()


def test_official_defaults():
    op = create_op("smpconv", 4, 4, 31)
    assert op.n_points == 31 * 31 // 4 and op.radius.detach().allclose(torch.full((240,), 4 / 31))
    assert op.positions.abs().max() <= 1 and op.weights.shape == (4, 4, 240)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    op = make_contract_op("smpconv", dim=dim, stride=stride)
    check_op_contract(op, (size,) * dim, make_contract_op("smpconv", dim=dim, stride=stride, seed=1))
    check_dense_kernel(op, (size,) * dim)


def test_bad_options_raise_with_the_op_name():
    with pytest.raises(ValueError, match=r"smpconv: n_points must be a positive int, got 0"):
        create_op("smpconv", 4, 4, n_points=0)
    with pytest.raises(ValueError, match=r"smpconv: in_channels \(4\) and out_channels \(6\) must both be divisible"):
        create_op("smpconv", 4, 6, groups=4)
