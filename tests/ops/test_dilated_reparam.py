"""dilated_reparam (UniRepLKNet, S12/S15): multi-branch form against a hand-written reference, and the merge."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.ops.dilated_reparam import DILATED_BRANCHES, dilated_to_dense
from convzoo.testing import check_dense_kernel, check_op_contract, make_contract_op

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def randomise_bns(op, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters, so a wrong BN fold cannot pass."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in [op.large_bn, *op.dilated_bns]:
            c = bn.num_features
            bn.running_mean.copy_(torch.randn(c, generator=generator))
            bn.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            bn.weight.copy_(torch.randn(c, generator=generator))
            if isinstance(bn.bias, torch.nn.Parameter):
                bn.bias.copy_(torch.randn(c, generator=generator))


def reference(op, x: torch.Tensor, training: bool = False) -> torch.Tensor:
    """Each branch with plain F.conv{d}d and explicit dilation, BN written out by hand, summed."""
    dim = x.dim() - 2
    conv = CONV[dim]
    channels = x.shape[1]
    stride = op.stride[0]
    large = op.kernel_size[0]

    def batch_norm(y, bn):
        shape = (1, -1) + (1,) * dim
        if training:
            axes = [0, *range(2, y.dim())]
            mean, var = y.mean(axes), y.var(axes, unbiased=False)
        else:
            mean, var = bn.running_mean, bn.running_var
        beta = bn.bias if isinstance(bn.bias, torch.nn.Parameter) else torch.zeros(channels, dtype=y.dtype)
        return (y - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps) * bn.weight.view(shape) + beta.view(shape)

    out = batch_norm(conv(x, op.large_weight, None, stride, large // 2, 1, channels), op.large_bn)
    for (k, r), weight, bn in zip(op.branches, op.dilated_weights, op.dilated_bns, strict=True):
        out = out + batch_norm(conv(x, weight, None, stride, r * (k - 1) // 2, r, channels), bn)
    return out


def test_table_rows_match_the_official_code():
    # AILab-CVC/UniRepLKNet, unireplknet.py, DilatedReparamBlock.__init__:
    #   K=17: kernel_sizes [5, 9, 3, 3, 3], dilates [1, 2, 4, 5, 7]
    #   K=13: kernel_sizes [5, 7, 3, 3, 3], dilates [1, 2, 3, 4, 5]
    #   K=7:  kernel_sizes [5, 3, 3],       dilates [1, 2, 3]
    #   K=5:  kernel_sizes [3, 3],          dilates [1, 2]
    assert DILATED_BRANCHES[17] == ((5, 1), (9, 2), (3, 4), (3, 5), (3, 7))
    assert DILATED_BRANCHES[13] == ((5, 1), (7, 2), (3, 3), (3, 4), (3, 5))
    assert DILATED_BRANCHES[7] == ((5, 1), (3, 2), (3, 3))
    assert DILATED_BRANCHES[5] == ((3, 1), (3, 2))
    assert sorted(DILATED_BRANCHES) == [5, 7, 9, 11, 13, 15, 17]


@pytest.mark.parametrize("large", sorted(DILATED_BRANCHES))
def test_every_branch_fits_the_large_kernel(large):
    reaches = [r * (k - 1) + 1 for k, r in DILATED_BRANCHES[large]]
    assert max(reaches) == large  # in the paper's table the widest branch spans the large kernel exactly
    assert all(k % 2 == 1 for k, _ in DILATED_BRANCHES[large])


@pytest.mark.parametrize("dim, size", [(1, 11), (2, 8), (3, 5)])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
def test_eval_matches_reference_and_merge(dim, size, stride, bias):
    torch.manual_seed(0)
    op = create_op("dilated_reparam", 4, 4, 7 if dim == 3 else 9, stride, dim=dim, bias=bias).double().eval()
    randomise_bns(op)
    x = torch.randn(2, 4, *(size,) * dim, dtype=torch.float64)
    with torch.no_grad():
        out = op(x)
        torch.testing.assert_close(out, reference(op, x), rtol=1e-10, atol=1e-10)
        merged = op.merge()
        assert isinstance(merged, torch.nn.modules.conv._ConvNd) and merged.groups == 4 and merged.bias is not None
        torch.testing.assert_close(merged(x), out, rtol=1e-10, atol=1e-10)


def test_training_mode_matches_reference_with_batch_statistics():
    torch.manual_seed(1)
    op = create_op("dilated_reparam", 3, 3, 11).double().train()
    randomise_bns(op)
    x = torch.randn(2, 3, 9, 10, dtype=torch.float64)
    torch.testing.assert_close(op(x), reference(op, x, training=True), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("large", sorted(DILATED_BRANCHES))
def test_dense_kernel_identity_for_every_row(large):
    torch.manual_seed(2)
    op = create_op("dilated_reparam", 2, 2, large, 2)
    randomise_bns(op)
    check_dense_kernel(op, (large + 2, large - 3))


def test_dilated_to_dense_places_taps_with_zeros_between():
    weight = torch.arange(1.0, 4.0).view(1, 1, 3)  # taps 1, 2, 3
    dense = dilated_to_dense(weight, dilation=3, size=9)
    assert dense.flatten().tolist() == [0, 1, 0, 0, 2, 0, 0, 3, 0]
    box = dilated_to_dense(torch.ones(1, 1, 3, 3), dilation=2, size=7)[0, 0]
    expected = torch.zeros(7, 7)
    expected[1:6:2, 1:6:2] = 1
    assert torch.equal(box, expected)


def test_bias_false_removes_the_learned_shifts_only():
    torch.manual_seed(3)
    op = create_op("dilated_reparam", 4, 4, 5, bias=False).double().eval()
    randomise_bns(op)
    assert not any("bias" in name for name, _ in op.named_parameters())
    spec = op.dense_kernel()
    bns = [op.large_bn, *op.dilated_bns]
    expected_bias = -sum(bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps) for bn in bns)
    torch.testing.assert_close(spec.bias, expected_bias)
    # parameters: K² + Σ k² weights and one γ per branch, per channel
    assert sum(p.numel() for p in op.parameters()) == 4 * (25 + 9 + 9) + 4 * 3


def test_parameter_count_with_bn():
    op = create_op("dilated_reparam", 6, 6, 13)
    weights = 13 * 13 + 5 * 5 + 7 * 7 + 3 * 3 * 3  # large kernel plus the K=13 row's small kernels
    assert sum(p.numel() for p in op.parameters()) == 6 * weights + 6 * 2 * 6  # γ and β for each of 6 BNs


def test_without_bn_is_a_plain_sum_of_depthwise_convs():
    torch.manual_seed(4)
    op = create_op("dilated_reparam", 3, 3, 7, 2, dim=1, use_bn=False).double()
    with torch.no_grad():
        op.bias.normal_()
    x = torch.randn(2, 3, 13, dtype=torch.float64)
    expected = F.conv1d(x, op.large_weight, op.bias, 2, 3, 1, 3)
    for (k, r), weight in zip(op.branches, op.dilated_weights, strict=True):
        expected = expected + F.conv1d(x, weight, None, 2, r * (k - 1) // 2, r, 3)
    torch.testing.assert_close(op(x), expected, rtol=1e-10, atol=1e-10)
    check_dense_kernel(op, (13,))
    assert create_op("dilated_reparam", 3, 3, 7, use_bn=False, bias=False).dense_kernel().bias is None


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    op = make_contract_op("dilated_reparam", dim=dim, stride=stride, kernel_size=5)
    fresh = make_contract_op("dilated_reparam", dim=dim, stride=stride, kernel_size=5, seed=1)
    check_op_contract(op, (size,) * dim, fresh=fresh)
    check_dense_kernel(op, (size,) * dim)


def test_contract_at_the_papers_kernel_size():
    op = make_contract_op("dilated_reparam", kernel_size=13, stride=2)
    check_op_contract(op, (9, 8))
    check_dense_kernel(op, (9, 8))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"dilated_reparam: kernel_size must be one of 5, 7, 9, 11, 13, 15, 17.*got 3"):
        create_op("dilated_reparam", 8, 8, 3)
    with pytest.raises(ValueError, match=r"dilated_reparam: kernel_size must be one of .*got 19"):
        create_op("dilated_reparam", 8, 8, 19)
    with pytest.raises(ValueError, match=r"dilated_reparam: kernel_size .*same on every axis.*\(13, 7\)"):
        create_op("dilated_reparam", 8, 8, (13, 7))
    with pytest.raises(ValueError, match=r"dilated_reparam: kernel_size must be odd.*got 6"):
        create_op("dilated_reparam", 8, 8, 6)
    with pytest.raises(ValueError, match=r"dilated_reparam: in_channels must equal out_channels.*got 8 -> 16"):
        create_op("dilated_reparam", 8, 16, 5)
    with pytest.raises(TypeError, match=r"dilated_reparam: use_bn must be a bool, got 'yes'"):
        create_op("dilated_reparam", 8, 8, 5, use_bn="yes")
    with pytest.raises(TypeError, match=r"dilated_reparam: unknown option\(s\) dilation"):
        create_op("dilated_reparam", 8, 8, 5, dilation=2)
    op = create_op("dilated_reparam", 8, 8, 5)
    with pytest.raises(ValueError, match=r"dilated_reparam: expected 8 input channels, got 4"):
        op(torch.randn(1, 4, 9, 9))
    with pytest.raises(ValueError, match=r"dilated_reparam: expected a 4-d input"):
        op(torch.randn(1, 8, 9))


def test_float32_gradients_in_3d_with_one_channel():
    # PyTorch's CPU oneDNN conv3d (groups=1, one channel, large kernel, stride 2) returns wrong weight gradients at
    # this shape; the op routes one-channel 3-d convs around it, so float32 must agree with float64.
    torch.manual_seed(5)
    op = create_op("dilated_reparam", 1, 1, 7, 2, dim=3)
    op64 = create_op("dilated_reparam", 1, 1, 7, 2, dim=3).double()
    op64.load_state_dict(op.state_dict())
    x = torch.randn(2, 1, 6, 7, 5, dtype=torch.float64)
    grad_out = torch.randn(2, 1, 3, 4, 3, dtype=torch.float64)
    op(x.float()).backward(grad_out.float())
    op64(x).backward(grad_out)
    for (name, p32), (_, p64) in zip(op.named_parameters(), op64.named_parameters(), strict=True):
        torch.testing.assert_close(p32.grad.double(), p64.grad, rtol=1e-4, atol=1e-4, msg=name)
