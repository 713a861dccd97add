"""scnn: equals a sequential per-pixel loop of the paper's recurrence; contract; errors."""

from __future__ import annotations

import pytest
import torch

from convzoo.ops.base import create_op
from convzoo.testing import check_op_contract, make_contract_op


def reference_scnn(x, weights, biases, stride):
    """The paper's four passes on a 2-d map, one pixel at a time (float64 loops, no conv calls)."""
    out = x.clone()
    _, channels, height, width = x.shape
    for index, (axis, reverse) in enumerate([(0, False), (0, True), (1, False), (1, True)]):
        weight, bias = weights[index], biases[index]
        half = weight.shape[-1] // 2
        length, across = (height, width) if axis == 0 else (width, height)
        order = list(range(length))[::-1] if reverse else list(range(length))
        for previous, current in zip(order[:-1], order[1:], strict=True):
            for position in range(across):
                for c_out in range(channels):
                    total = bias[c_out].clone()
                    for c_in in range(channels):
                        for tap in range(weight.shape[-1]):
                            q = position + tap - half
                            if 0 <= q < across:
                                pixel = out[:, c_in, previous, q] if axis == 0 else out[:, c_in, q, previous]
                                total = total + weight[c_out, c_in, tap] * pixel
                    if axis == 0:
                        out[:, c_out, current, position] += torch.relu(total)
                    else:
                        out[:, c_out, position, current] += torch.relu(total)
    return out[:, :, ::stride, ::stride]


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("size", "kernel"), [((5, 6), 3), ((4, 3), 5)])
def test_equals_the_sequential_loop(stride, size, kernel):
    torch.manual_seed(0)
    op = create_op("scnn", 3, 3, kernel, stride).double()
    with torch.no_grad():
        for b in op.biases:
            b.normal_()
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    expected = reference_scnn(x, [w.detach() for w in op.weights], [b.detach() for b in op.biases], stride)
    torch.testing.assert_close(op(x), expected, rtol=1e-10, atol=1e-10)


def test_1d_is_a_forward_then_backward_recurrence():
    torch.manual_seed(0)
    op = create_op("scnn", 2, 2, 1, dim=1, bias=False).double()
    x = torch.randn(1, 2, 5, dtype=torch.float64)
    forward, backward = (w.detach() for w in op.weights)
    out = x.clone()
    for j in range(1, 5):
        out[..., j] += torch.relu(out[..., j - 1] @ forward.t())
    for j in range(3, -1, -1):
        out[..., j] += torch.relu(out[..., j + 1] @ backward.t())
    torch.testing.assert_close(op(x), out)


def test_messages_travel_the_whole_map():
    op = create_op("scnn", 2, 2, 3)
    with torch.no_grad():
        for b in op.biases:
            b.fill_(10.0)  # every relu open: each pixel then reaches every other through the four passes
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    op(x)[0, :, 2, 3].sum().backward()
    assert (x.grad[0].abs().sum(0) > 0).all()


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_contract(dim, stride):
    op = make_contract_op("scnn", dim=dim, stride=stride)
    for side in (7, 8, 1):
        check_op_contract(op, (side,) * dim, fresh=make_contract_op("scnn", dim=dim, stride=stride, seed=1))


def test_bad_arguments():
    with pytest.raises(ValueError, match="scnn: a 1-d slice is one point, so kernel_size must be 1 for dim=1, got 3"):
        create_op("scnn", 4, 4, 3, dim=1)
    with pytest.raises(ValueError, match=r"scnn: kernel_size must be the same on every axis, got \(3, 5, 3\)"):
        create_op("scnn", 4, 4, (3, 5, 3), dim=3)
    with pytest.raises(ValueError, match="scnn: in_channels must equal out_channels"):
        create_op("scnn", 4, 8, 3)
