"""gⁿConv (S96): the order-n recursion against an unrolled numpy reference; degree n+1 homogeneity; contract."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from convzoo.ops.base import create_op
from convzoo.testing import check_op_contract, make_contract_op


def _np(t):
    return t.detach().double().numpy()


def _pointwise(conv, x):
    """1×1 conv as an explicit channel matmul at every position: x (N, C, *S)."""
    w = _np(conv.weight).reshape(conv.weight.shape[0], -1)
    y = np.einsum("oc,nc...->no...", w, x)
    if conv.bias is not None:
        y = y + _np(conv.bias).reshape(1, -1, *[1] * (x.ndim - 2))
    return y


def _depthwise(conv, x):
    """Depthwise "same" conv with loops over taps: x (N, C, *S)."""
    w, b = _np(conv.weight), _np(conv.bias)
    k = w.shape[2:]
    pad = [(0, 0), (0, 0)] + [(kk // 2, kk // 2) for kk in k]
    padded = np.pad(x, pad)
    y = np.zeros_like(x) + b.reshape(1, -1, *[1] * (x.ndim - 2))
    for tap in itertools.product(*(range(kk) for kk in k)):
        window = tuple(slice(t, t + s) for t, s in zip(tap, x.shape[2:], strict=True))
        y += w[(slice(None), 0, *tap)].reshape(1, -1, *[1] * (x.ndim - 2)) * padded[(slice(None), slice(None), *window)]
    return y


def _unrolled(op, x):
    """gⁿConv written step by step: channel counts C/2^(n-1), …, C; one gate per order."""
    c, n = op.in_channels, op.order
    widths = [c // 2 ** (n - 1 - k) for k in range(n)]
    fused = _pointwise(op.proj_in, x)
    p = fused[:, : widths[0]]
    q = _depthwise(op.dwconv, fused[:, widths[0] :]) * (1 / 3)
    offsets = np.cumsum([0] + widths)
    gates = [q[:, offsets[k] : offsets[k + 1]] for k in range(n)]
    p = p * gates[0]  # order 1: a 2nd-order interaction
    for k in range(1, n):
        p = _pointwise(op.pws[k - 1], p) * gates[k]  # one more order per step
    return _pointwise(op.proj_out, p)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
@pytest.mark.parametrize(("dim", "size"), [(1, (9,)), (2, (6, 7)), (3, (4, 3, 5))])
def test_matches_unrolled_reference(order, dim, size):
    torch.manual_seed(order)
    op = create_op("gnconv", 16, 16, 5 if dim < 3 else 3, dim=dim, order=order).double()
    with torch.no_grad():
        for p in op.parameters():
            if p.dim() == 1:
                p.normal_(std=0.5)  # non-zero biases everywhere
    x = torch.randn(2, 16, *size, dtype=torch.float64)
    np.testing.assert_allclose(_np(op(x)), _unrolled(op, x.numpy()), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_bias_free_gnconv_is_homogeneous_of_degree_order_plus_one(order):
    """With every bias zero, p_k is a product of k+1 linear maps of x: y(λx) = λ^(n+1) y(x)."""
    torch.manual_seed(0)
    op = create_op("gnconv", 16, 16, 3, order=order).double()
    with torch.no_grad():
        for p in op.parameters():
            if p.dim() == 1:
                p.zero_()
    x = torch.randn(1, 16, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(op(2 * x), 2 ** (order + 1) * op(x), rtol=1e-10, atol=1e-12)


def test_channel_splits_follow_the_official_layout():
    op = create_op("gnconv", 64, 64, 7, order=4)
    assert op.dims == [8, 16, 32, 64]
    assert op.dwconv.weight.shape == (120, 1, 7, 7)
    assert [tuple(pw.weight.shape[:2]) for pw in op.pws] == [(16, 8), (32, 16), (64, 32)]
    # parameters by hand: proj_in, dwconv, pws, proj_out (weights + biases)
    c, g = 64, 120
    expected = (c * 2 * c + 2 * c) + (g * 49 + g) + sum(a * b + b for a, b in [(8, 16), (16, 32), (32, 64)])
    expected += c * c + c
    assert sum(p.numel() for p in op.parameters()) == expected


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_contract(dim):
    op = make_contract_op("gnconv", dim=dim)
    fresh = make_contract_op("gnconv", dim=dim, seed=1)
    for side in (7, 8, 1):
        check_op_contract(op, (side,) * dim, fresh)


def test_bad_options_raise_with_names():
    with pytest.raises(ValueError, match=r"gnconv: channels must be divisible by 2\^\(order-1\) = 16"):
        create_op("gnconv", 24, 24, order=5)
    with pytest.raises(ValueError, match="gnconv: order must be a positive int, got 0"):
        create_op("gnconv", 16, 16, order=0)
    with pytest.raises(ValueError, match="gnconv: in_channels must equal out_channels"):
        create_op("gnconv", 16, 32)
    with pytest.raises(ValueError, match="gnconv: stride must be at most 1"):
        create_op("gnconv", 16, 16, stride=2)
