"""binary (S8 XNOR-Net): float op against an explicit-loop reference, STE gradients by hand, contract checks."""

from __future__ import annotations

import itertools

import pytest
import torch

from convzoo import create_op
from convzoo.ops.binary import binary_sign
from convzoo.testing import check_dense_kernel, check_op_contract, make_contract_op


def _sign(value: float) -> float:
    return 1.0 if value >= 0 else -1.0


def _reference(x, weight, bias, stride, mode):
    """S8 binary conv by loops in float64: padded taps are skipped (contribute 0), K averages over k^d."""
    n_batch, c_in, *size = x.shape
    c_out, _, *kernel = weight.shape
    pad = [k // 2 for k in kernel]
    out_size = [-(-s // st) for s, st in zip(size, stride, strict=True)]
    taps = list(itertools.product(*(range(k) for k in kernel)))
    out = torch.zeros(n_batch, c_out, *out_size, dtype=torch.float64)
    for o in range(c_out):
        alpha = sum(abs(float(v)) for v in weight[o].flatten()) / weight[o].numel()
        for n in range(n_batch):
            for pos in itertools.product(*(range(s) for s in out_size)):
                total, k_map = 0.0, 0.0
                for tap in taps:
                    src = [p * st + t - pd for p, st, t, pd in zip(pos, stride, tap, pad, strict=True)]
                    if any(i < 0 or i >= s for i, s in zip(src, size, strict=True)):
                        continue  # a padded position: neither +1 nor -1
                    for c in range(c_in):
                        value = float(x[(n, c, *src)])
                        x_term = _sign(value) if mode == "xnor" else value
                        total += x_term * _sign(float(weight[(o, c, *tap)]))
                        k_map += abs(value) / c_in
                scale = alpha * (k_map / len(taps) if mode == "xnor" else 1.0)
                out[(n, o, *pos)] = total * scale + (0.0 if bias is None else float(bias[o]))
    return out


@pytest.mark.parametrize("mode", ["xnor", "bwn"])
@pytest.mark.parametrize(("dim", "size", "stride"), [(1, (7,), 2), (2, (5, 6), 1), (2, (5, 4), 2), (3, (3, 4, 3), 2)])
def test_matches_loop_reference(mode, dim, size, stride):
    torch.manual_seed(0)
    op = create_op("binary", 3, 4, 3, stride, dim=dim, mode=mode).double()
    with torch.no_grad():
        op.bias.normal_()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    x[0, 0].flatten()[0] = 0.0  # a real zero binarises to +1
    expected = _reference(x, op.weight.detach(), op.bias.detach(), op.stride, mode)
    torch.testing.assert_close(op(x), expected, rtol=1e-10, atol=1e-10)


def test_padding_contributes_zero_and_zero_input_is_plus_one():
    op = create_op("binary", 2, 1, 3, bias=False).double()
    with torch.no_grad():
        op.weight.fill_(0.5)  # α = 0.5, all signs +1
    out = op(torch.ones(1, 2, 3, 3, dtype=torch.float64))
    # corner: 4 in-bounds taps × 2 channels, K = 4 / 9; centre: 9 taps × 2 channels, K = 1
    assert out[0, 0, 0, 0].item() == pytest.approx(0.5 * 8 * 4 / 9)
    assert out[0, 0, 1, 1].item() == pytest.approx(0.5 * 18)
    assert binary_sign(torch.tensor([0.0, -0.0, -1e-30])).tolist() == [1.0, 1.0, -1.0]


def test_sign_straight_through_gradient_by_hand():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5], requires_grad=True)
    y = binary_sign(x)
    assert y.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    y.backward(torch.arange(1.0, 8.0))
    assert x.grad.tolist() == [0.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0]


def test_weight_gradient_by_hand():
    """1×1 bwn conv at one position: y_o = α_o Σ_c sign(W_oc) x_c, α_o = mean |W_o|; the gradient is
    g_o (α_o 1_{|W_oc| ≤ 1} x_c + sign(W_oc) Σ_c' sign(W_oc') x_c' / C) (S8 §3.2, straight-through sign)."""
    weight = torch.tensor([[0.5, -2.0, 0.25], [-0.75, 1.5, 3.0]], dtype=torch.float64)
    x = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    g = torch.tensor([1.0, -3.0], dtype=torch.float64)
    op = create_op("binary", 3, 2, 1, dim=1, bias=False, mode="bwn").double()
    with torch.no_grad():
        op.weight.copy_(weight.unsqueeze(-1))
    (op(x.view(1, 3, 1)).view(2) * g).sum().backward()
    expected = torch.zeros(2, 3, dtype=torch.float64)
    for o in range(2):
        alpha = sum(abs(v) for v in weight[o].tolist()) / 3
        dot = sum(_sign(weight[o, c].item()) * x[c].item() for c in range(3))
        for c in range(3):
            ste = 1.0 if abs(weight[o, c].item()) <= 1 else 0.0
            expected[o, c] = g[o] * (alpha * ste * x[c] + _sign(weight[o, c].item()) * dot / 3)
    torch.testing.assert_close(op.weight.grad.view(2, 3), expected)


@pytest.mark.parametrize("mode", ["xnor", "bwn"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_contract(mode, dim):
    for stride in (1, 2):
        for side in (7, 8, 1):
            size = (side,) * dim if dim < 3 else (min(side, 5),) * 3
            op = make_contract_op("binary", dim=dim, stride=stride)
            op = create_op("binary", op.in_channels, op.out_channels, 3, stride, dim=dim, mode=mode)
            fresh = create_op("binary", op.in_channels, op.out_channels, 3, stride, dim=dim, mode=mode)
            check_op_contract(op, size, fresh)
            if mode == "bwn":
                check_dense_kernel(op, size)


def test_errors_and_repr():
    with pytest.raises(ValueError, match=r"binary: mode must be one of bwn, xnor, got 'xor'"):
        create_op("binary", 2, 2, mode="xor")
    with pytest.raises(NotImplementedError, match="binary: only mode='bwn' is linear"):
        create_op("binary", 2, 2).dense_kernel()
    with pytest.raises(ValueError, match="binary: expected 2 input channels"):
        create_op("binary", 2, 2)(torch.randn(1, 3, 4, 4))
    assert "mode=bwn" in repr(create_op("binary", 2, 2, mode="bwn"))
