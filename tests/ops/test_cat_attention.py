"""cat_attention (S69 CAT): FFT form equals an explicit circulant-matrix attention, rows sum to 1, contract."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_op
from convzoo.ops.cat_attention import circular_attention
from convzoo.testing import check_op_contract


def circulant_reference(weights, values):
    """``A[i, j] = z*[(j - i) mod T]`` built entry by entry, then ``A @ V``: the O(T²) form."""
    batch, heads, tokens = weights.shape
    matrix = torch.empty(batch, heads, tokens, tokens, dtype=weights.dtype)
    for i in range(tokens):
        for j in range(tokens):
            matrix[:, :, i, j] = weights[:, :, (j - i) % tokens]
    return matrix @ values, matrix


@pytest.mark.parametrize("tokens", [1, 5, 8])
def test_fft_equals_the_circulant_matrix(tokens):
    g = torch.Generator().manual_seed(tokens)
    weights = torch.randn(2, 3, tokens, generator=g, dtype=torch.float64).softmax(-1)
    values = torch.randn(2, 3, tokens, 4, generator=g, dtype=torch.float64)
    expected, matrix = circulant_reference(weights, values)
    torch.testing.assert_close(circular_attention(weights, values), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(matrix.sum(-1), torch.ones(2, 3, tokens, dtype=torch.float64))  # row-stochastic


@pytest.mark.parametrize("dim", [1, 2])
def test_op_equals_explicit_attention(dim):
    op = create_op("cat_attention", 8, 8, dim=dim, heads=2).double()
    spatial = (6,) if dim == 1 else (3, 4)
    x = torch.randn(2, 8, *spatial, dtype=torch.float64)
    tokens = x.flatten(2).transpose(1, 2)  # (N, T, C)
    with torch.no_grad():
        z = (tokens @ op.score.weight.t()).softmax(dim=1).transpose(1, 2)  # (N, h, T)
        v = (tokens @ op.value.weight.t()).view(2, -1, 2, 4).transpose(1, 2)  # (N, h, T, 4)
        mixed, _ = circulant_reference(z, v)
        out = mixed.transpose(1, 2).reshape(2, -1, 8) @ op.proj.weight.t() + op.proj.bias  # (N, T, C)
        expected = out.transpose(1, 2).reshape(x.shape)
        torch.testing.assert_close(op(x), expected, rtol=1e-10, atol=1e-10)


def test_parameter_count_merges_query_and_key():
    """W_A: C → heads (no bias), W_V: C → C (no bias), output projection C → C with bias."""
    op = create_op("cat_attention", 16, 16, dim=1, heads=4)
    assert sum(p.numel() for p in op.parameters()) == 16 * 4 + 16 * 16 + 16 * 16 + 16


@pytest.mark.parametrize(("dim", "size"), [(1, 7), (2, 8), (3, 1)])
def test_contract(dim, size):
    op = create_op("cat_attention", 8, 8, dim=dim)
    check_op_contract(op, (size,) * dim, fresh=create_op("cat_attention", 8, 8, dim=dim))


def test_bad_arguments():
    with pytest.raises(ValueError, match="cat_attention: heads must be a positive int dividing in_channels=8, got 3"):
        create_op("cat_attention", 8, 8, heads=3)
    with pytest.raises(ValueError, match="cat_attention: stride must be at most 1"):
        create_op("cat_attention", 8, 8, stride=2)
