"""oversized (ParCNetV2): FFT, strips and direct forms agree; the bands equal their dense outer-product kernel;
the whole mixer equals its formula written with plain convs; contract; errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.ops.base import create_op
from convzoo.ops.oversized import BifurcateGateUnit, oversized_conv
from convzoo.testing import check_op_contract, make_contract_op


def reference_mixer(op, x):
    """ParC_V2 by its formula with F.conv2d and the dense oversized kernel (2-d)."""
    size = x.shape[2:]
    gate, value = F.conv2d(x, op.pw1_weight, op.pw1_bias).chunk(2, dim=1)
    value = F.gelu(value)
    m = value.shape[1]
    dense = op.oversized_kernel(size)
    global_mix = F.conv2d(value, dense, None, op.stride, tuple(k // 2 for k in dense.shape[2:]), groups=m)
    local_mix = F.conv2d(value, op.local_weight, None, op.stride, op.local_kernel_size // 2, groups=m)
    gate = gate[:, :, :: op.stride[0], :: op.stride[1]]
    return F.conv2d(gate * (global_mix + local_mix), op.pw2_weight, op.pw2_bias)


@pytest.mark.parametrize("interpolate", [False, True])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(8, 8), (7, 10)])
def test_fft_strips_and_direct_forms_agree_with_the_reference(interpolate, stride, size):
    torch.manual_seed(0)
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    outputs = []
    for path in ("direct", "strips", "fft"):
        torch.manual_seed(1)
        op = create_op("oversized", 4, 6, 15, stride, interpolate=interpolate, path=path).double()
        outputs.append(op(x))
    expected = reference_mixer(op, x)
    for out in outputs:
        torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


def test_interpolated_kernel_is_twice_the_input_and_sees_everything():
    op = create_op("oversized", 2, 2, 13, interpolate=True)
    dense = op.oversized_kernel((5, 9)).detach()
    assert dense.shape[2:] == (9, 17)
    # the official resize: bilinear, align_corners, of the (K, 1) and (1, K) kernels; the dense kernel is their product
    rows = F.interpolate(op.axis_weights[0].detach().unsqueeze(-1), [9, 1], mode="bilinear", align_corners=True)
    cols = F.interpolate(op.axis_weights[1].detach().unsqueeze(-2), [1, 17], mode="bilinear", align_corners=True)
    torch.testing.assert_close(dense, rows * cols)
    value = torch.randn(1, 2, 5, 9, requires_grad=True)
    out = oversized_conv(value, list(op.axis_weights), (1, 1), True)
    out[0, 0, 0, 0].backward()
    assert (value.grad[0, 0] != 0).all()  # a corner output reaches every input pixel


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("interpolate", [False, True])
def test_contract(dim, stride, interpolate):
    torch.manual_seed(0)
    op = create_op("oversized", 8, 16, 5, stride, dim=dim, interpolate=interpolate)
    torch.manual_seed(1)
    fresh = create_op("oversized", 8, 16, 5, stride, dim=dim, interpolate=interpolate)
    for side in (7, 8, 1):
        check_op_contract(op, (side,) * dim, fresh=fresh)


def test_contract_default_kernel():
    op = make_contract_op("oversized")
    check_op_contract(op, (8, 8))


def test_bifurcate_gate_unit_formula():
    torch.manual_seed(0)
    bgu = BifurcateGateUnit(4, 5.0).double()
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    tokens = x.permute(0, 2, 3, 1)  # (N, H, W, C): the official linear layers
    hidden = tokens @ bgu.fc1_weight[:, :, 0, 0].t() + bgu.fc1_bias
    a, b = hidden[..., :10], hidden[..., 10:]
    expected = (a * F.gelu(b)) @ bgu.fc2_weight[:, :, 0, 0].t()
    torch.testing.assert_close(bgu(x), expected.permute(0, 3, 1, 2))
    assert sum(p.numel() for p in bgu.parameters()) == 4 * 20 + 20 + 10 * 4  # official BGU(dim=4, mlp_ratio=5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="oversized: path must be one of direct, strips, fft or None, got 'gpu'"):
        create_op("oversized", 4, 4, 5, path="gpu")
    with pytest.raises(ValueError, match="oversized: local_kernel_size must be a positive odd int, got 4"):
        create_op("oversized", 4, 4, 5, local_kernel_size=4)
    with pytest.raises(TypeError, match="oversized: interpolate must be a bool, got 1"):
        create_op("oversized", 4, 4, 5, interpolate=1)
    with pytest.raises(ValueError, match="oversized: expansion_ratio=0.1 at in_channels=4 gives no gated channels"):
        create_op("oversized", 4, 4, 5, expansion_ratio=0.1)
