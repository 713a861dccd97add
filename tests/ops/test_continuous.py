"""CKConv (S117) and FlexConv (S27): kernel networks against hand-written formulas, a loop convolution reference,
FFT == direct, resolution independence of the kernel, the mask's gradient and the dense-kernel identity."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convzoo.ops.base import create_op
from convzoo.ops.continuous import fft_conv_nd
from convzoo.ops.kernel_nets import SIREN, MAGNet
from convzoo.testing import check_dense_kernel, check_op_contract, make_contract_op

OPS = ("ckconv", "flexconv")


def _grid(size):
    """Positions of every tap, listed in C order, as plain floats (independent of the code under test)."""
    axes = [[0.0] if s == 1 else [-1 + 2 * i / (s - 1) for i in range(s)] for s in size]
    return list(itertools.product(*axes))


def _siren_reference(net: SIREN, point):
    z = np.array(point, dtype=np.float64)
    for layer in net.hidden:
        w, b = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
        z = np.sin(net.omega_0 * (w @ z + b))
    return net.output_linear.weight.detach().double().numpy() @ z + net.output_linear.bias.detach().double().numpy()


def _magnet_reference(net: MAGNet, point):
    p = np.array(point, dtype=np.float64)
    mu, gamma = net.mu.detach().double().numpy(), net.gamma.detach().double().numpy()

    def gabor(layer):
        lin = net.filter_linears[layer]
        w, b = lin.weight.detach().double().numpy(), lin.bias.detach().double().numpy()
        out = np.empty(w.shape[0])
        for h in range(w.shape[0]):
            window = math.exp(-0.5 * sum((gamma[layer, h, d] * (p[d] - mu[layer, h, d])) ** 2 for d in range(len(p))))
            out[h] = window * math.sin(float(w[h] @ p + b[h]))
        return out

    z = gabor(0)
    for layer, lin in enumerate(net.linears, start=1):
        z = gabor(layer) * (lin.weight.detach().double().numpy() @ z + lin.bias.detach().double().numpy())
    return net.output_linear.weight.detach().double().numpy() @ z + net.output_linear.bias.detach().double().numpy()


def _reference_kernel(op, size):
    """Kernel (C_out, C_in, *size) (or (C_in, 1, *size) separable) from the net and mask formulas, float64."""
    net = op.kernel_net
    evaluate = _siren_reference if op.kernel_net_name == "siren" else _magnet_reference
    points = _grid(size)
    values = np.stack([evaluate(net, p) for p in points], axis=-1)  # (outputs, P)
    if op.registry_name == "flexconv":
        sigma = op.mask_width.detach().double().numpy()
        mask = np.array([math.exp(-0.5 * sum((p[d] / sigma[d]) ** 2 for d in range(len(p)))) for p in points])
        values = values * mask
    leading = (op.in_channels, 1) if op.separable else (op.out_channels, op.in_channels)
    return torch.from_numpy(values.reshape(*leading, *size))


def _loop_conv(x, weight, bias, stride):
    """Cross-correlation with zero "same" padding, one output at a time (1-d and 2-d)."""
    n, c_in, *size = x.shape
    c_out, per_group, *k = weight.shape
    groups = c_in // per_group
    out_size = [-(-s // st) for s, st in zip(size, stride, strict=True)]
    y = torch.zeros(n, c_out, *out_size, dtype=torch.float64)
    for o in range(c_out):
        g = o // (c_out // groups)
        for out_index in itertools.product(*(range(s) for s in out_size)):
            total = torch.zeros(n, dtype=torch.float64) if bias is None else bias[o].expand(n).clone()
            for tap in itertools.product(*(range(kk) for kk in k)):
                src = [oi * st + t - kk // 2 for oi, st, t, kk in zip(out_index, stride, tap, k, strict=True)]
                if all(0 <= s < size_d for s, size_d in zip(src, size, strict=True)):
                    for j in range(per_group):
                        total += weight[(o, j, *tap)] * x[(slice(None), g * per_group + j, *src)]
            y[(slice(None), o, *out_index)] = total
    return y


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("kernel_net", ["siren", "magnet"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_kernel_matches_the_kernel_net_formula(name, kernel_net, dim):
    torch.manual_seed(0)
    op = create_op(name, 2, 3, 3, dim=dim, kernel_net=kernel_net, hidden=8).double()
    for size in [(3,) * dim, (5,) + (1,) * (dim - 1)]:
        torch.testing.assert_close(op.kernel(size).detach(), _reference_kernel(op, size), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize(("dim", "size", "stride"), [(1, (9,), 1), (1, (8,), 2), (2, (5, 6), 1), (2, (5, 5), 2)])
def test_forward_matches_loop_reference(name, separable, dim, size, stride):
    torch.manual_seed(1)
    options = {"mask_init": 0.5} if name == "flexconv" else {}  # a mask wide enough that every tap counts
    op = create_op(name, 2, 3, 5, stride, dim=dim, hidden=8, separable=separable, **options).double()
    with torch.no_grad():
        op.bias.normal_()
    x = torch.randn(2, 2, *size, dtype=torch.float64)
    weight = _reference_kernel(op, op.kernel_size)
    expected = _loop_conv(x, weight, op.bias.detach(), op.stride)
    if separable:
        mixer = op.channel_mixer.detach().flatten(1)
        expected = torch.einsum("oi,ni...->no...", mixer, expected) + op.mixer_bias.detach().view(1, -1, *[1] * dim)
    torch.testing.assert_close(op(x).detach(), expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize(
    ("dim", "size", "kernel", "stride"),
    [(1, (300,), 61, 1), (1, (257,), 101, 2), (2, (12, 11), 7, 1), (2, (9, 10), 5, 2), (3, (6, 5, 7), 3, 1)],
)
@pytest.mark.parametrize("separable", [False, True])
def test_fft_path_equals_direct_path(name, dim, size, kernel, stride, separable):
    torch.manual_seed(2)
    direct = create_op(name, 3, 4, kernel, stride, dim=dim, hidden=8, separable=separable, fft=False).double()
    with torch.no_grad():
        direct.bias.normal_()
    fft = copy.deepcopy(direct)
    fft.fft = True
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    torch.testing.assert_close(fft(x), direct(x), rtol=1e-9, atol=1e-10)


def test_fft_is_chosen_by_kernel_size_and_agrees_on_a_long_sequence():
    torch.manual_seed(3)
    large = create_op("ckconv", 2, 2, 101, dim=1, hidden=8).double()
    small = create_op("ckconv", 2, 2, 9, dim=1, hidden=8)
    assert large.uses_fft() and not small.uses_fft()
    forced = copy.deepcopy(large)
    forced.fft = False
    x = torch.randn(1, 2, 2048, dtype=torch.float64)
    torch.testing.assert_close(large(x), forced(x), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("groups", [1, 3])
def test_fft_conv_nd_equals_torch_conv(groups):
    torch.manual_seed(4)
    x = torch.randn(2, 6, 10, 9, dtype=torch.float64)
    w = torch.randn(3, 6 // groups, 5, 3, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    expected = F.conv2d(x, w, b, padding=(2, 1), groups=groups)
    torch.testing.assert_close(fft_conv_nd(x, w, b, (2, 1), groups), expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_kernel_at_any_resolution_samples_the_same_function(name, dim):
    """``linspace(-1, 1, 9)[::2] == linspace(-1, 1, 5)``: the fine kernel contains the coarse one."""
    torch.manual_seed(5)
    op = create_op(name, 2, 2, 5, dim=dim, hidden=8).double()
    coarse, fine = op.kernel(5), op.kernel(9)
    every_other = (slice(None), slice(None), *([slice(None, None, 2)] * dim))
    torch.testing.assert_close(fine[every_other], coarse, rtol=1e-9, atol=1e-12)
    assert op.kernel((7,) * dim).shape == (2, 2, *(7,) * dim)
    # the same parameters run at another kernel resolution
    bigger = copy.deepcopy(op)
    bigger.kernel_size = (9,) * dim
    assert bigger(torch.randn(1, 2, *(11,) * dim, dtype=torch.float64)).shape == (1, 2, *(11,) * dim)


def test_flexconv_mask_width_receives_gradient_and_sets_the_size():
    torch.manual_seed(6)
    op = create_op("flexconv", 2, 2, 33, dim=2, hidden=8)
    x = torch.randn(1, 2, 16, 16)
    (op(x) ** 2).sum().backward()
    assert op.mask_width.grad is not None and op.mask_width.grad.abs().min() > 0
    # a wider mask keeps more of the kernel's far taps
    kernel = op.kernel().detach()
    with torch.no_grad():
        op.mask_width.fill_(0.5)
    wide = op.kernel().detach()
    assert wide[..., 0, 0].abs().sum() > kernel[..., 0, 0].abs().sum()


def test_magnet_parameter_count_by_hand():
    d, h, layers, out = 2, 32, 3, 7
    net = MAGNet(d, out, h, layers)
    expected = (layers + 1) * (3 * h * d + h) + layers * (h * h + h) + (h * out + out)
    assert sum(p.numel() for p in net.parameters()) == expected


@pytest.mark.parametrize("name", OPS)
@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
def test_contract_and_dense_kernel(name, dim, stride):
    op = make_contract_op(name, dim=dim, stride=stride)
    fresh = make_contract_op(name, dim=dim, stride=stride, seed=1)
    for side in (7, 8, 1):
        check_op_contract(op, (side,) * dim, fresh)
        check_dense_kernel(op, (side,) * dim)
    separable = create_op(name, 4, 6, 5, stride, dim=dim, separable=True, fft=True)
    check_dense_kernel(separable, (9,) * dim)


def test_bad_options_raise_with_names():
    with pytest.raises(ValueError, match="ckconv: kernel_net must be one of"):
        create_op("ckconv", 2, 2, kernel_net="mlp")
    with pytest.raises(ValueError, match="ckconv: hidden must be a positive int, got 0"):
        create_op("ckconv", 2, 2, hidden=0)
    with pytest.raises(ValueError, match="ckconv: fft must be None"):
        create_op("ckconv", 2, 2, fft="yes")
    with pytest.raises(ValueError, match="ckconv: omega_0 must be a positive number"):
        create_op("ckconv", 2, 2, omega_0=-1.0)
    with pytest.raises(ValueError, match="flexconv: mask_init must be a positive number"):
        create_op("flexconv", 2, 2, mask_init=0)
    with pytest.raises(ValueError, match="flexconv: kernel_size must be odd"):
        create_op("flexconv", 2, 2, 4)
    with pytest.raises(ValueError, match="ckconv: expected 2 input channels"):
        create_op("ckconv", 2, 2)(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="ckconv: kernel size must be positive"):
        create_op("ckconv", 2, 2).kernel(0)


def test_fft_benchmark_suite_runs_quick():
    import convzoo.benchmarks  # noqa: F401  (registers the suites)
    from convzoo.profile import MachinePeaks
    from convzoo.profile.bench import run_suite

    peaks = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=None, copy_gbps=5.0)
    result = run_suite("ckconv_fft", quick=True, threads=1, peaks=peaks)
    assert not result.skipped and len(result.results) == 2
    assert all(case.ratio > 0 for case in result.results)
