"""conv, group, e2gc and dwsep against slow references written from the definition of convolution."""

from __future__ import annotations

import itertools

import pytest
import torch

from convzoo import create_op


def slow_conv2d(x, weight, bias, stride, padding, groups=1):
    """Cross-correlation by explicit loops over output pixels.

    ``y[o, p] = Σ_{i in group, δ} w[o, i, δ] x[i, s·p + δ − pad]``.
    """
    n, c_in, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    xp = torch.zeros(n, c_in, h + 2 * padding, w + 2 * padding, dtype=x.dtype)
    xp[:, :, padding : padding + h, padding : padding + w] = x
    out_h = (h + 2 * padding - kh) // stride + 1
    out_w = (w + 2 * padding - kw) // stride + 1
    out = torch.zeros(n, c_out, out_h, out_w, dtype=x.dtype)
    out_per_group = c_out // groups
    for o, i, j in itertools.product(range(c_out), range(out_h), range(out_w)):
        g = o // out_per_group
        patch = xp[
            :, g * c_per_group : (g + 1) * c_per_group, i * stride : i * stride + kh, j * stride : j * stride + kw
        ]
        out[:, o, i, j] = (patch * weight[o]).sum(dim=(1, 2, 3)) + (0 if bias is None else bias[o])
    return out


@pytest.mark.parametrize(("stride", "size"), [(1, 5), (2, 6), (2, 5)])
def test_conv_equals_loop_reference(stride, size):
    op = create_op("conv", 3, 4, 3, stride).double()
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    torch.testing.assert_close(op(x), slow_conv2d(x, op.weight, op.bias, stride, 1))


def test_group_conv_equals_loop_reference():
    op = create_op("group", 4, 6, 3, groups=2).double()
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(op(x), slow_conv2d(x, op.weight, op.bias, 1, 1, groups=2))


def test_e2gc_equals_group_conv_with_groups_c_over_g():
    op = create_op("e2gc", 12, 6, 3, group_size=4).double()
    assert op.groups == 3 and op.weight.shape == (6, 4, 3, 3)
    x = torch.randn(2, 12, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(op(x), slow_conv2d(x, op.weight, op.bias, 1, 1, groups=3))


def test_e2gc_keeps_group_size_constant_across_widths():
    for width in (16, 32, 64):
        assert create_op("e2gc", width, width, group_size=8).weight.shape[1] == 8


def test_e2gc_invalid_group_size():
    with pytest.raises(ValueError, match=r"e2gc: in_channels \(10\) must be divisible by group_size G=4"):
        create_op("e2gc", 10, 8)
    with pytest.raises(ValueError, match=r"e2gc: out_channels \(6\) must be divisible by groups = in_channels / G = 4"):
        create_op("e2gc", 16, 6)
    with pytest.raises(ValueError, match=r"e2gc: group_size must be a positive int, got 0"):
        create_op("e2gc", 16, 16, group_size=0)


def test_dwsep_equals_depthwise_then_pointwise_loops():
    op = create_op("dwsep", 3, 5, 3, 2, depth_multiplier=2).double()
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    mid = slow_conv2d(x, op.depthwise, None, 2, 1, groups=3)  # (2, 6, 4, 4)
    expected = slow_conv2d(mid, op.pointwise, op.bias, 1, 0)
    torch.testing.assert_close(op(x), expected)
    assert sum(p.numel() for p in op.parameters()) == 6 * 9 + 5 * 6 + 5


def test_conv_dilation_and_tuple_kernel():
    op = create_op("conv", 2, 2, (3, 5), dilation=2, dim=2)
    assert op(torch.randn(1, 2, 9, 10)).shape == (1, 2, 9, 10)


def test_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=r"group: in_channels \(6\) and out_channels \(8\) must both be divisible"):
        create_op("group", 6, 8, groups=4)


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match=r"conv: kernel_size must be odd for symmetric 'same' padding, got 4"):
        create_op("conv", 4, 4, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"in_channels": 0}, r"conv: in_channels must be a positive int, got 0"),
        ({"stride": 0}, r"conv: stride must be positive, got 0"),
        ({"kernel_size": (3, 3, 3)}, r"conv: kernel_size must be an int or a tuple of 2 ints for dim=2"),
        ({"dim": 4}, r"conv: supports dim in \(1, 2, 3\), got dim=4"),
    ],
)
def test_bad_contract_arguments(kwargs, message):
    args = {"in_channels": 4, "out_channels": 4} | kwargs
    with pytest.raises(ValueError, match=message):
        create_op("conv", **args)


def test_one_channel_strided_conv3d_gradients_are_right():
    # oneDNN's CPU conv3d backward returns garbage weight gradients here (torch 2.13); conv_nd must route around it
    torch.manual_seed(0)
    op = create_op("conv", 1, 2, 7, 2, dim=3)
    x = torch.randn(2, 1, 7, 7, 7)
    y = op(x)
    g = torch.randn_like(y)
    (y * g).sum().backward()
    op64 = create_op("conv", 1, 2, 7, 2, dim=3).double()
    op64.load_state_dict(op.state_dict())
    (op64(x.double()) * g.double()).sum().backward()
    torch.testing.assert_close(op.weight.grad.double(), op64.weight.grad, rtol=1e-4, atol=1e-4)
    assert y.shape == (2, 2, 4, 4, 4)
