"""asym (rank-1 outer-product identity) and cp (sum of rank-1 one-way filters, parameter formula)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op


def test_asym_single_channel_is_outer_product_of_its_two_kernels():
    op = create_op("asym", 1, 1, 5, bias=False).double()
    column = op.weights[0][0, 0, :, 0]  # k×1
    row = op.weights[1][0, 0, 0, :]  # 1×k
    x = torch.randn(2, 1, 9, 8, dtype=torch.float64)
    expected = F.conv2d(x, torch.outer(column, row)[None, None], padding=2)
    torch.testing.assert_close(op(x), expected)


def test_asym_multichannel_equals_sum_over_mid_of_outer_products():
    op = create_op("asym", 3, 4, 3, 2, mid_channels=2).double()
    w1, w2 = op.weights[0][:, :, :, 0], op.weights[1][:, :, 0, :]  # (M, I, k), (O, M, k)
    dense = torch.zeros(4, 3, 3, 3, dtype=torch.float64)
    for o in range(4):
        for i in range(3):
            for m in range(2):
                dense[o, i] += torch.outer(w1[m, i], w2[o, m])
    x = torch.randn(2, 3, 7, 6, dtype=torch.float64)
    torch.testing.assert_close(op(x), F.conv2d(x, dense, op.bias, stride=2, padding=1))


def test_asym_params():
    op = create_op("asym", 8, 16, 7)
    assert sum(p.numel() for p in op.parameters()) == 8 * 16 * 7 + 16 * 16 * 7 + 16


def test_cp_dense_kernel_equals_sum_of_outer_products():
    op = create_op("cp", 3, 5, 3, rank=2, dim=3).double()
    a = op.project_out[:, :, 0, 0, 0]  # (C_out, R)
    b = op.project_in[:, :, 0, 0, 0]  # (R, C_in)
    k1, k2, k3 = (f.flatten(1) for f in op.factors)  # (R, k) each
    dense = torch.zeros(5, 3, 3, 3, 3, dtype=torch.float64)
    for r in range(2):
        taps = torch.einsum("x,y,z->xyz", k1[r], k2[r], k3[r])
        dense += a[:, r, None, None, None, None] * b[r][None, :, None, None, None] * taps
    x = torch.randn(2, 3, 5, 6, 4, dtype=torch.float64)
    torch.testing.assert_close(op(x), F.conv3d(x, dense, op.bias, padding=1))
    torch.testing.assert_close(op.dense_kernel().weight, dense)


@pytest.mark.parametrize(("dim", "kernel_size"), [(1, 5), (2, 3), (3, 3), (2, (3, 5))])
def test_cp_params_follow_the_paper(dim, kernel_size):
    rank, c_in, c_out = 4, 6, 10
    op = create_op("cp", c_in, c_out, kernel_size, rank=rank, dim=dim, bias=False)
    k_sum = sum(kernel_size) if isinstance(kernel_size, tuple) else kernel_size * dim
    assert sum(p.numel() for p in op.parameters()) == rank * (c_in + c_out + k_sum)


def test_cp_rank_must_be_positive():
    with pytest.raises(ValueError, match=r"cp: rank must be a positive int, got 0"):
        create_op("cp", 4, 4, rank=0)


def test_asym_rejects_one_dimensional_use():
    with pytest.raises(ValueError, match=r"asym: supports dim in \(2, 3\), got dim=1"):
        create_op("asym", 4, 4, dim=1)
