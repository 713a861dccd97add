"""ls (LSNet): SKA against a naive per-pixel loop; the whole op against the loop fed by its perception; contract."""

from __future__ import annotations

import pytest
import torch

from convzoo.ops.base import create_op
from convzoo.ops.lsconv import small_kernel_aggregation
from convzoo.testing import check_op_contract, make_contract_op, randomize_batchnorm_


def naive_aggregation(x, weights, k, stride):
    """out[n, c, i, j] = Σ_{a, b} x[n, c, s·i + a − k//2, s·j + b − k//2] · w[n, c % W, a·k + b, i, j] (2-d)."""
    n_batch, channels, height, width = x.shape
    groups, out_h, out_w = weights.shape[1], weights.shape[3], weights.shape[4]
    out = torch.zeros(n_batch, channels, out_h, out_w, dtype=x.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    total = 0.0
                    for a in range(k):
                        for b in range(k):
                            row, col = stride * i + a - k // 2, stride * j + b - k // 2
                            if 0 <= row < height and 0 <= col < width:
                                total += x[n, c, row, col] * weights[n, c % groups, a * k + b, i, j]
                    out[n, c, i, j] = total
    return out


@pytest.mark.parametrize(("k", "stride", "size"), [(3, 1, (5, 6)), (5, 2, (7, 6)), (3, 2, (4, 5))])
def test_aggregation_equals_the_naive_loop(k, stride, size):
    torch.manual_seed(0)
    x = torch.randn(2, 6, *size, dtype=torch.float64)
    out_size = [-(-n // stride) for n in size]
    weights = torch.randn(2, 3, k * k, *out_size, dtype=torch.float64)
    got = small_kernel_aggregation(x, weights, k, (stride, stride))
    torch.testing.assert_close(got, naive_aggregation(x, weights, k, stride), rtol=1e-12, atol=1e-12)


def test_aggregation_1d_and_3d_match_a_dense_loop():
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, dtype=torch.float64)
    w = torch.randn(1, 2, 3, 6, dtype=torch.float64)
    padded = torch.nn.functional.pad(x, (1, 1))
    expected = torch.stack(
        [sum(padded[:, c, p + t] * w[:, c % 2, t, p] for t in range(3)) for c in range(4) for p in range(6)], -1
    ).view(1, 4, 6)
    torch.testing.assert_close(small_kernel_aggregation(x, w, 3, (1,)), expected)
    x3 = torch.randn(1, 2, 3, 3, 3, dtype=torch.float64)
    w3 = torch.zeros(1, 1, 27, 3, 3, 3, dtype=torch.float64)
    w3[:, :, 13] = 1  # only the centre tap: the identity
    torch.testing.assert_close(small_kernel_aggregation(x3, w3, 3, (1, 1, 1)), x3)


@pytest.mark.parametrize("stride", [1, 2])
def test_ls_conv_equals_bn_of_the_naive_loop_plus_input(stride):
    torch.manual_seed(0)
    op = randomize_batchnorm_(create_op("ls", 8, 8, 7, stride, groups=4)).double().eval()
    x = torch.randn(2, 8, 6, 7, dtype=torch.float64)
    weights = op.perceive(x)
    assert weights.shape == (2, 2, 9, *[-(-n // stride) for n in (6, 7)])
    expected = op.out_bn(naive_aggregation(x, weights, 3, stride)) + x[:, :, ::stride, ::stride]
    torch.testing.assert_close(op(x), expected, rtol=1e-10, atol=1e-10)


def test_official_parameter_count():
    # LSConv(dim=64) in THU-MIG/lsnet: cv1 64·32 + BN 2·32, cv2 32·49 + BN, cv3 32·32 + BN, cv4 32·72 + 72,
    # GroupNorm 2·72, output BN 2·64
    op = create_op("ls", 64, 64, 7)
    expected = 64 * 32 + 64 + 32 * 49 + 64 + 32 * 32 + 64 + 32 * 72 + 72 + 2 * 72 + 2 * 64
    assert sum(p.numel() for p in op.parameters()) == expected


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_contract(dim, stride):
    op = make_contract_op("ls", dim=dim, stride=stride)
    fresh = make_contract_op("ls", dim=dim, stride=stride, seed=1)
    for side in (7, 8, 1):
        check_op_contract(op, (side,) * dim, fresh=fresh)


def test_bad_arguments():
    with pytest.raises(ValueError, match="ls: groups must be a positive int dividing in_channels=8, got 3"):
        create_op("ls", 8, 8, 7, groups=3)
    with pytest.raises(ValueError, match="ls: small_kernel_size must be a positive odd int, got 2"):
        create_op("ls", 8, 8, 7, small_kernel_size=2)
    with pytest.raises(ValueError, match="ls: in_channels must equal out_channels"):
        create_op("ls", 8, 16, 7)
