"""involution: per-pixel loop reference, unfold form agreement, kernel generation by hand, contract, dynamic suite."""

from __future__ import annotations

import itertools

import pytest
import torch

from convzoo import create_op
from convzoo.ops.involution import involution_aggregate, involution_aggregate_unfold
from convzoo.profile import MachinePeaks
from convzoo.profile.bench import run_suite
from convzoo.testing import check_op_contract, make_contract_op, randomize_batchnorm_

PEAKS = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=None, copy_gbps=5.0)


def loop_aggregate(x, kernels, kernel_size, stride):
    """``y[n, c, o] = Σ_j kernels[n, g(c)·K + j, o] · x[n, c, o·s + j − pad]`` pixel by pixel (zero outside)."""
    n, channels, *size = x.shape
    out_size = [-(-s // st) for s, st in zip(size, stride, strict=True)]
    taps = 1
    for k in kernel_size:
        taps *= k
    groups = kernels.shape[1] // taps
    out = torch.zeros(n, channels, *out_size, dtype=torch.float64)
    window = list(itertools.product(*(range(k) for k in kernel_size)))
    for b, c, o in itertools.product(range(n), range(channels), itertools.product(*(range(s) for s in out_size))):
        g = c // (channels // groups)
        total = 0.0
        for j, offset in enumerate(window):
            source = [
                oo * st + off - (k - 1) // 2 for oo, st, off, k in zip(o, stride, offset, kernel_size, strict=True)
            ]
            if all(0 <= s < size_d for s, size_d in zip(source, size, strict=True)):
                total += kernels[(b, g * taps + j, *o)].item() * x[(b, c, *source)].item()
        out[(b, c, *o)] = total
    return out


CASES = [(1, (5,), (1,), (9,)), (1, (3,), (2,), (8,)), (2, (3, 5), (1, 1), (5, 6)), (2, (3, 3), (2, 2), (7, 6)),
         (3, (3, 3, 3), (2, 1, 2), (3, 4, 3))]  # fmt: skip


@pytest.mark.parametrize(("dim", "kernel_size", "stride", "size"), CASES)
def test_both_aggregations_match_the_per_pixel_loop(dim, kernel_size, stride, size):
    torch.manual_seed(0)
    groups, channels = 2, 6
    out_size = [-(-s // st) for s, st in zip(size, stride, strict=True)]
    taps = 1
    for k in kernel_size:
        taps *= k
    x = torch.randn(2, channels, *size, dtype=torch.float64)
    kernels = torch.randn(2, groups * taps, *out_size, dtype=torch.float64)
    expected = loop_aggregate(x, kernels, kernel_size, stride)
    torch.testing.assert_close(involution_aggregate(x, kernels, kernel_size, stride), expected)
    torch.testing.assert_close(involution_aggregate_unfold(x, kernels, kernel_size, stride), expected)


@pytest.mark.parametrize("stride", [1, 2])
def test_kernel_generation_matches_the_formula_by_hand(stride):
    torch.manual_seed(0)
    op = randomize_batchnorm_(create_op("involution", 32, 32, 3, stride)).double().eval()
    x = torch.randn(2, 32, 5, 5, dtype=torch.float64)
    pooled = x
    if stride == 2:  # 2×2 means over the windows that lie in the 5×5 input: 3×3 outputs, the last ones partial
        pooled = torch.stack(
            [
                torch.stack([x[:, :, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2].mean(dim=(2, 3)) for j in range(3)], -1)
                for i in range(3)
            ],
            -2,
        )
    bn = op.reduce_norm
    reduced = torch.einsum("rc,nchw->nrhw", op.reduce_weight[:, :, 0, 0], pooled)
    reduced = (reduced - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
    reduced = torch.relu(reduced * bn.weight[:, None, None] + bn.bias[:, None, None])
    kernels = torch.einsum("kr,nrhw->nkhw", op.span_weight[:, :, 0, 0], reduced) + op.span_bias[:, None, None]
    assert op.groups == 2 and kernels.shape[1] == 2 * 9
    with torch.no_grad():
        torch.testing.assert_close(op.generate_kernels(x), kernels)
        torch.testing.assert_close(op(x), loop_aggregate(x, kernels, (3, 3), (stride, stride)))


def test_official_defaults_reduction_4_and_16_channels_per_group():
    op = create_op("involution", 64, 64, 7)
    assert op.groups == 4 and op.reduce_weight.shape == (16, 64, 1, 1) and op.span_weight.shape == (4 * 49, 16, 1, 1)
    x = torch.randn(1, 64, 6, 6)
    assert op.macs((6, 6)) == 36 * (64 * 16 + 16 * 4 * 49 + 64 * 49)
    unfold = create_op("involution", 64, 64, 7, aggregation="unfold")
    unfold.load_state_dict(op.state_dict())
    op.eval(), unfold.eval()
    with torch.no_grad():
        torch.testing.assert_close(op(x), unfold(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    op = make_contract_op("involution", dim=dim, stride=stride)
    check_op_contract(op, (size,) * dim, make_contract_op("involution", dim=dim, stride=stride, seed=1))


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_several_groups_keep_the_input_memory_format(dim, stride):
    # 32 channels in two kernel groups: the sum runs in the input's layout, and matches the unfold form
    torch.manual_seed(4)
    op = create_op("involution", 32, 32, 3, stride, dim=dim).eval()
    fmt = torch.channels_last if dim == 2 else torch.channels_last_3d
    x = torch.randn(2, 32, *(6,) * dim)
    with torch.no_grad():
        kernels = op.generate_kernels(x)
        expected = involution_aggregate_unfold(x, kernels, op.kernel_size, op.stride)
        for layout in (torch.contiguous_format, fmt):
            y = involution_aggregate(x.contiguous(memory_format=layout), kernels, op.kernel_size, op.stride)
            assert y.is_contiguous(memory_format=layout)
            torch.testing.assert_close(y, expected)
            assert op(x.contiguous(memory_format=layout)).is_contiguous(memory_format=layout)


def test_bad_options_raise_with_the_op_name():
    with pytest.raises(ValueError, match=r"involution: in_channels \(24\) must be divisible by group_channels \(16\)"):
        create_op("involution", 24, 24)
    with pytest.raises(ValueError, match=r"involution: in_channels must equal out_channels"):
        create_op("involution", 16, 32)
    with pytest.raises(ValueError, match=r"involution: aggregation must be 'shifted' or 'unfold', got 'im2col'"):
        create_op("involution", 16, 16, aggregation="im2col")
    with pytest.raises(ValueError, match=r"involution: reduction must be a positive int, got 0"):
        create_op("involution", 16, 16, reduction=0)
    with pytest.raises(ValueError, match=r"involution: kernels must be \(N, G·9, \*\[4, 4\]\)"):
        involution_aggregate(torch.randn(1, 4, 4, 4), torch.randn(1, 9, 3, 3), (3, 3), (1, 1))


def test_dynamic_suite_runs_quick():
    result = run_suite("dynamic", quick=True, threads=1, repeats=20, warmup=1, peaks=PEAKS)
    names = [r.name for r in result.results] + [name for name, _ in result.skipped]
    assert sum(name.startswith("involution") for name in names) == 2 and sum("dcls" in n for n in names) == 2
    assert all(r.name.startswith("involution") for r in result.results) or len(result.results) == 4
    for name, why in result.skipped:  # only the package cases may be skipped, and only for its absence
        assert "dcls package" in name and "not installed" in why
