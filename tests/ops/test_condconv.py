"""condconv: the batched grouped conv equals a per-sample loop with each example's mixed kernel; routing; contract."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.testing import check_op_contract, make_contract_op

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def per_sample_reference(op, x):
    """Loop over the batch: routing r = sigmoid(W·mean(x) + b) by hand, kernel Σ_e r_e W_e, one conv per example."""
    outputs = []
    for sample in x:
        pooled = sample.flatten(1).mean(dim=1)  # (C_in,)
        routing = [
            1 / (1 + torch.exp(-(op.routing_weight[e] @ pooled + op.routing_bias[e]))) for e in range(op.num_experts)
        ]
        kernel = sum(r * w for r, w in zip(routing, op.experts, strict=True))
        bias = None if op.expert_bias is None else sum(r * b for r, b in zip(routing, op.expert_bias, strict=True))
        padding = tuple(k // 2 for k in op.kernel_size)
        conv = CONV[op.dim]
        outputs.append(conv(sample[None], kernel, bias, stride=op.stride, padding=padding, groups=op.groups))
    return torch.cat(outputs)


@pytest.mark.parametrize(
    ("dim", "kernel", "stride", "groups", "bias"),
    [(1, 5, 1, 1, True), (2, 3, 2, 2, True), (2, (3, 5), 1, 1, False), (3, 3, 2, 1, True)],
)
def test_batched_grouped_conv_equals_the_per_sample_loop(dim, kernel, stride, groups, bias):
    torch.manual_seed(0)
    op = create_op("condconv", 4, 6, kernel, stride, dim=dim, num_experts=3, groups=groups, bias=bias).double()
    x = torch.randn(3, 4, *(7,) * dim, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(op(x), per_sample_reference(op, x))


def test_examples_get_different_kernels_and_one_expert_is_a_scaled_conv():
    torch.manual_seed(0)
    op = create_op("condconv", 3, 5, num_experts=1).double()
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        gate = torch.sigmoid(x.mean(dim=(2, 3)) @ op.routing_weight.t() + op.routing_bias)  # (2, 1)
        for n in range(2):
            expected = gate[n] * F.conv2d(x[n : n + 1], op.experts[0], op.expert_bias[0], padding=1)
            torch.testing.assert_close(op(x)[n : n + 1], expected)
        assert not torch.allclose(gate[0], gate[1])


def test_paper_default_is_eight_experts_and_every_part_learns():
    op = create_op("condconv", 8, 16)
    assert op.num_experts == 8 and op.experts.shape == (8, 16, 8, 3, 3) and op.expert_bias.shape == (8, 16)
    x = torch.randn(2, 8, 5, 5)
    op(x).square().sum().backward()
    for name, p in op.named_parameters():
        assert p.grad is not None and (p.grad != 0).any(), name


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    op = make_contract_op("condconv", dim=dim, stride=stride)
    check_op_contract(op, (size,) * dim, make_contract_op("condconv", dim=dim, stride=stride, seed=1))


def test_bad_options_raise_with_the_op_name():
    with pytest.raises(ValueError, match=r"condconv: num_experts must be a positive int, got 0"):
        create_op("condconv", 4, 4, num_experts=0)
    with pytest.raises(ValueError, match=r"condconv: in_channels \(4\) and out_channels \(6\) must both be divisible"):
        create_op("condconv", 4, 6, groups=4)
    with pytest.raises(ValueError, match=r"condconv: expected 4 input channels, got 3"):
        create_op("condconv", 4, 4)(torch.randn(1, 3, 5, 5))
