"""weighted: the density is the symmetric outer product by hand, and the op is the conv of weight × density."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.testing import check_dense_kernel, check_op_contract, make_contract_op


def test_default_3x3_density_is_the_outer_product_of_07_1_07():
    op = create_op("weighted", 2, 3)
    expected = torch.tensor([[0.49, 0.7, 0.49], [0.7, 1.0, 0.7], [0.49, 0.7, 0.49]])
    torch.testing.assert_close(op.density_function(), expected)


def test_explicit_density_in_1d_and_3d():
    op1 = create_op("weighted", 2, 2, 5, dim=1, density=[0.2, 0.8])
    torch.testing.assert_close(op1.density_function(), torch.tensor([0.2, 0.8, 1.0, 0.8, 0.2]))
    op3 = create_op("weighted", 2, 2, 3, dim=3, density=[0.5])
    assert op3.density_function()[0, 0, 0] == pytest.approx(0.125) and op3.density_function()[1, 1, 1] == 1
    assert op3.density_function()[1, 0, 1] == pytest.approx(0.5) and op3.density_function()[0, 1, 0] == 0.25


@pytest.mark.parametrize(("dim", "kernel", "stride", "groups"), [(1, 7, 1, 1), (2, (3, 5), 2, 2), (3, 3, 1, 1)])
def test_op_is_the_conv_of_weight_times_density(dim, kernel, stride, groups):
    torch.manual_seed(0)
    op = create_op("weighted", 4, 6, kernel, stride, dim=dim, groups=groups).double()
    with torch.no_grad():
        op.bias.normal_()
    x = torch.randn(2, 4, *(8,) * dim, dtype=torch.float64)
    weight = op.weight.detach().clone()
    for index in torch.cartesian_prod(*(torch.arange(k) for k in op.kernel_size)).reshape(-1, dim).tolist():
        # the density at an offset u: Π_d φ[u_d], each φ read from the default table by hand
        table = {1: [1.0], 3: [0.7, 1, 0.7], 5: [0.2, 0.8, 1, 0.8, 0.2], 7: [0.25, 0.15, 0.55, 1, 0.55, 0.15, 0.25]}
        factor = 1.0
        for d, u in enumerate(index):
            factor *= table[op.kernel_size[d]][u]
        weight[(slice(None), slice(None), *index)] *= factor
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dim]
    padding = tuple(k // 2 for k in op.kernel_size)
    expected = conv(x, weight, op.bias, stride=op.stride, padding=padding, groups=groups)
    with torch.no_grad():
        torch.testing.assert_close(op(x), expected)
    check_dense_kernel(op, (8,) * dim)


def test_unit_density_is_the_plain_conv_and_the_learnable_density_learns():
    torch.manual_seed(0)
    op = create_op("weighted", 3, 4, 5, density=[1.0, 1.0]).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(op(x), F.conv2d(x, op.weight, op.bias, padding=2))
    learned = create_op("weighted", 3, 4, 5, learnable=True)
    fixed = create_op("weighted", 3, 4, 5)
    fixed.load_state_dict(learned.state_dict(), strict=False)
    x32 = x.float()
    torch.testing.assert_close(learned(x32), fixed(x32))
    learned(x32).square().sum().backward()
    assert learned.density_values.grad is not None and (learned.density_values.grad != 0).all()


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    op = make_contract_op("weighted", dim=dim, stride=stride)
    check_op_contract(op, (size,) * dim, make_contract_op("weighted", dim=dim, stride=stride, seed=1))
    check_dense_kernel(op, (size,) * dim)


def test_bad_options_raise_with_the_op_name():
    with pytest.raises(ValueError, match=r"weighted: no default density for kernel size 9"):
        create_op("weighted", 4, 4, 9)
    with pytest.raises(ValueError, match=r"weighted: density needs kernel_size // 2 = 1 values for kernel size 3"):
        create_op("weighted", 4, 4, 3, density=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"weighted: learnable density .* needs a square kernel"):
        create_op("weighted", 4, 4, (3, 5), learnable=True)
    with pytest.raises(TypeError, match=r"weighted: learnable must be a bool, got 'yes'"):
        create_op("weighted", 4, 4, learnable="yes")
