"""inception_dw (InceptionNeXt, S40): channel split into identity / square / band branches, checked by hand."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.testing import check_dense_kernel, check_op_contract, make_contract_op


def reference_2d(op, x: torch.Tensor) -> torch.Tensor:
    """The official layout written out: channels [identity | hw (k_s×k_s) | w (1×k_b) | h (k_b×1)]."""
    channels = x.shape[1]
    g = int(channels * op.branch_ratio)
    n_id = channels - 3 * g
    ks, kb, s = op.kernel_size[0], op.band_kernel_size, op.stride[0]
    square, band_w, band_h = op.branch_weights
    bias = op.bias if op.bias is not None else torch.zeros(3 * g, dtype=x.dtype)
    x_id, x_hw, x_w, x_h = x[:, :n_id], x[:, n_id : n_id + g], x[:, n_id + g : n_id + 2 * g], x[:, n_id + 2 * g :]
    assert square.shape == (g, 1, ks, ks) and band_w.shape == (g, 1, 1, kb) and band_h.shape == (g, 1, kb, 1)
    y_hw = F.conv2d(x_hw, square, bias[:g], stride=s, padding=(ks // 2, ks // 2), groups=g)
    y_w = F.conv2d(x_w, band_w, bias[g : 2 * g], stride=s, padding=(0, kb // 2), groups=g)
    y_h = F.conv2d(x_h, band_h, bias[2 * g :], stride=s, padding=(kb // 2, 0), groups=g)
    return torch.cat([x_id[:, :, ::s, ::s], y_hw, y_w, y_h], dim=1)


@pytest.mark.parametrize("channels", [8, 16, 20])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(9, 12), (1, 5)])
def test_matches_hand_split_reference(channels, stride, size):
    torch.manual_seed(0)
    op = create_op("inception_dw", channels, channels, 3, stride).double()
    x = torch.randn(2, channels, *size, dtype=torch.float64)
    torch.testing.assert_close(op(x), reference_2d(op, x), rtol=1e-12, atol=1e-12)


def test_matches_reference_with_other_options():
    torch.manual_seed(1)
    op = create_op("inception_dw", 12, 12, 5, 2, bias=False, band_kernel_size=7, branch_ratio=0.25).double()
    assert op.bias is None and (op.identity_channels, op.branch_channels) == (3, 3)
    x = torch.randn(2, 12, 10, 7, dtype=torch.float64)
    torch.testing.assert_close(op(x), reference_2d(op, x), rtol=1e-12, atol=1e-12)


def test_3d_has_one_band_per_axis():
    torch.manual_seed(2)
    op = create_op("inception_dw", 8, 8, 3, 2, dim=3, band_kernel_size=5).double()
    assert [tuple(w.shape[2:]) for w in op.branch_weights] == [(3, 3, 3), (1, 1, 5), (1, 5, 1), (5, 1, 1)]
    x = torch.randn(2, 8, 6, 5, 7, dtype=torch.float64)
    outputs = [x[:, :4, ::2, ::2, ::2]]  # 8 - 4·1 identity channels, subsampled
    paddings = [(1, 1, 1), (0, 0, 2), (0, 2, 0), (2, 0, 0)]
    for index, (weight, padding) in enumerate(zip(op.branch_weights, paddings, strict=True)):
        group = x[:, 4 + index : 5 + index]
        outputs.append(F.conv3d(group, weight, op.bias[index : index + 1], stride=2, padding=padding))
    torch.testing.assert_close(op(x), torch.cat(outputs, dim=1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_dense_kernel_identity(dim, stride):
    torch.manual_seed(3)
    op = create_op("inception_dw", 16, 16, 3, stride, dim=dim, band_kernel_size=5)
    check_dense_kernel(op, (7,) * dim)
    spec = op.dense_kernel()
    assert spec.weight.shape == (16, 1, *(5,) * dim) and spec.groups == 16
    identity = torch.zeros((5,) * dim)
    identity[(2,) * dim] = 1
    assert torch.equal(spec.weight[0, 0], identity) and torch.equal(
        spec.bias[: op.identity_channels], torch.zeros(op.identity_channels)
    )


def test_dense_kernel_when_the_square_kernel_is_wider_than_the_band():
    torch.manual_seed(4)
    op = create_op("inception_dw", 8, 8, 7, 2, band_kernel_size=3, bias=False)
    assert op.dense_kernel().weight.shape == (8, 1, 7, 7) and op.dense_kernel().bias is None
    check_dense_kernel(op, (9, 10))


def test_token_mixer_parameter_count_at_96_channels():
    # InceptionNeXt-T stage 1 (C = 96, k_s = 3, k_b = 11, r = 1/8): g = rC = 12 channels per conv branch.
    # Weights (k_s² + 2·k_b)·g = (9 + 22)·12 = 372, plus one bias per conv-branch channel 3·g = 36.
    op = create_op("inception_dw", 96, 96)
    assert (op.identity_channels, op.branch_channels) == (96 - 3 * 12, 12)
    assert sum(p.numel() for p in op.parameters()) == (3 * 3 + 2 * 11) * 12 + 3 * 12 == 408
    assert sum(p.numel() for p in create_op("inception_dw", 96, 96, bias=False).parameters()) == 372


def test_largest_ratio_leaves_an_empty_identity_group():
    torch.manual_seed(5)
    op = create_op("inception_dw", 9, 9, branch_ratio=1 / 3).double()
    assert (op.identity_channels, op.branch_channels) == (0, 3)
    x = torch.randn(1, 9, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(op(x), reference_2d(op, x), rtol=1e-12, atol=1e-12)
    check_dense_kernel(op, (6, 6))


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    op = make_contract_op("inception_dw", dim=dim, stride=stride)
    assert op.branch_channels == 1  # 8 channels at the default ratio 1/8
    check_op_contract(op, (size,) * dim, fresh=make_contract_op("inception_dw", dim=dim, stride=stride, seed=1))
    check_dense_kernel(op, (size,) * dim)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"inception_dw: band_kernel_size must be odd.*got 10"):
        create_op("inception_dw", 8, 8, band_kernel_size=10)
    with pytest.raises(ValueError, match=r"inception_dw: band_kernel_size must be a positive int, got 0"):
        create_op("inception_dw", 8, 8, band_kernel_size=0)
    with pytest.raises(ValueError, match=r"inception_dw: kernel_size must be odd.*got 4"):
        create_op("inception_dw", 8, 8, 4)
    with pytest.raises(ValueError, match=r"inception_dw: branch_ratio must be in \(0, 1/3\] for dim=2.*got 0.4"):
        create_op("inception_dw", 8, 8, branch_ratio=0.4)
    with pytest.raises(ValueError, match=r"inception_dw: branch_ratio must be in \(0, 1/4\] for dim=3.*got 0.3"):
        create_op("inception_dw", 8, 8, dim=3, branch_ratio=0.3)
    with pytest.raises(ValueError, match=r"inception_dw: branch_ratio must be in \(0, 1/3\].*got 0"):
        create_op("inception_dw", 8, 8, branch_ratio=0)
    with pytest.raises(TypeError, match=r"inception_dw: branch_ratio must be a number, got '1/8'"):
        create_op("inception_dw", 8, 8, branch_ratio="1/8")
    with pytest.raises(ValueError, match=r"inception_dw: in_channels=4 with branch_ratio=0.125 gives .* = 0 channels"):
        create_op("inception_dw", 4, 4)
    with pytest.raises(ValueError, match=r"inception_dw: in_channels must equal out_channels.*got 8 -> 16"):
        create_op("inception_dw", 8, 16)
    with pytest.raises(TypeError, match=r"inception_dw: unknown option\(s\) square_kernel_size"):
        create_op("inception_dw", 8, 8, square_kernel_size=3)
    with pytest.raises(ValueError, match=r"inception_dw: expected 8 input channels, got 6"):
        create_op("inception_dw", 8, 8)(torch.randn(1, 6, 5, 5))


def test_float32_gradients_in_3d_with_one_channel_per_branch():
    # PyTorch's CPU oneDNN conv3d (groups=1, one channel, long depth kernel, stride 2) returns wrong weight gradients
    # at this shape; the op routes one-channel branches around it, so float32 must agree with float64.
    for seed in range(3):
        torch.manual_seed(seed)
        op = create_op("inception_dw", 8, 8, 3, 2, dim=3)
        op64 = create_op("inception_dw", 8, 8, 3, 2, dim=3).double()
        op64.load_state_dict(op.state_dict())
        x = torch.randn(2, 8, 7, 7, 7, dtype=torch.float64)
        grad_out = torch.randn(2, 8, 4, 4, 4, dtype=torch.float64)
        op(x.float()).backward(grad_out.float())
        op64(x).backward(grad_out)
        for (name, p32), (_, p64) in zip(op.named_parameters(), op64.named_parameters(), strict=True):
            torch.testing.assert_close(p32.grad.double(), p64.grad, rtol=1e-4, atol=1e-4, msg=name)


@pytest.mark.parametrize(("dim", "channels", "ratio"), [(2, 16, 0.125), (3, 16, 0.125), (2, 9, 1 / 3)])
@pytest.mark.parametrize("stride", [1, 2])
def test_output_and_gradients_keep_the_input_memory_format(dim, channels, ratio, stride):
    # the branches are written into one tensor laid out like the input (no torch.cat), training included
    torch.manual_seed(6)
    op = create_op("inception_dw", channels, channels, 3, stride, dim=dim, band_kernel_size=5, branch_ratio=ratio)
    fmt = torch.channels_last if dim == 2 else torch.channels_last_3d
    x = torch.randn(2, channels, *(7,) * dim)
    grads = []
    for layout in (torch.contiguous_format, fmt):
        xl = x.clone(memory_format=layout).requires_grad_(True)
        y = op(xl)
        assert y.is_contiguous(memory_format=layout)
        y.backward(torch.arange(y.numel(), dtype=y.dtype).view_as(y).sin())
        grads.append([xl.grad, *(p.grad.clone() for p in op.parameters())])
        op.zero_grad(set_to_none=True)
    for contiguous, channels_last in zip(*grads, strict=True):
        torch.testing.assert_close(channels_last, contiguous, rtol=1e-5, atol=1e-5)
