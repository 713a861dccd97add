"""The large depthwise kernel path: every path equals F.conv{d}d (float64), in value and in gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo.core.conv import conv_nd
from convzoo.kernels.large_kernel import (
    FFT_MIN_WIDTH,
    STRIP_WIDTH,
    DepthwiseConv2d,
    choose_path,
    depthwise_conv,
    fft_size,
    large_kernel_module,
)
from convzoo.ops.base import ConvSpec

PATHS = ("direct", "strips", "fft")


def _case(size, kernel, channels=3, batch=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, *size, generator=generator, dtype=torch.float64)
    weight = torch.randn(channels, 1, *kernel, generator=generator, dtype=torch.float64)
    bias = torch.randn(channels, generator=generator, dtype=torch.float64)
    return x, weight, bias


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(
    ("size", "kernel"),
    [((9, 10), (3, 3)), ((16, 15), (15, 15)), ((20, 21), (31, 31)), ((12, 13), (5, 27)), ((7, 8), (14, 16))],
)
def test_2d_paths_equal_conv2d(path, stride, size, kernel):
    x, weight, bias = _case(size, kernel)
    padding = tuple(k // 2 for k in kernel)
    expected = F.conv2d(x, weight, bias, stride, padding, groups=x.shape[1])
    out = depthwise_conv(x, weight, bias, stride, padding, path=path)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("stride", "padding", "dilation"), [(1, (2, 8), 2), (2, (5, 16), (1, 3)), ((1, 2), 9, 2)])
def test_2d_paths_with_dilation_and_uneven_padding(path, stride, padding, dilation):
    x, weight, bias = _case((17, 18), (5, 17))
    expected = F.conv2d(x, weight, bias, stride, padding, dilation, groups=x.shape[1])
    out = depthwise_conv(x, weight, bias, stride, padding, dilation, path=path)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("size", "kernel"), [((40,), (29,)), ((6, 7, 8), (3, 5, 15))])
@pytest.mark.parametrize("stride", [1, 2])
def test_1d_and_3d_paths_equal_conv(path, size, kernel, stride):
    x, weight, bias = _case(size, kernel)
    padding = tuple(k // 2 for k in kernel)
    expected = conv_nd(x, weight, bias, stride=stride, padding=padding, groups=x.shape[1])
    out = depthwise_conv(x, weight, None, stride, padding, path=path) + bias.view(-1, *([1] * len(size)))
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("stride", [1, 2])
def test_gradients_agree_with_conv2d(path, stride):
    x, weight, bias = _case((11, 12), (19, 17))
    padding = (9, 8)
    upstream = torch.randn(
        2, 3, *[(n + 2 * p - k) // stride + 1 for n, p, k in zip((11, 12), padding, (19, 17), strict=True)]
    )
    grads = []
    for run in (
        lambda a, w, b: F.conv2d(a, w, b, stride, padding, groups=3),
        lambda a, w, b: depthwise_conv(a, w, b, stride, padding, path=path),
    ):
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        (run(*leaves) * upstream.double()).sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for got, expected in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_gradcheck_fft_and_strips():
    x, weight, bias = _case((6, 7), (5, 15), channels=2, batch=1)
    for path in ("strips", "fft"):
        inputs = tuple(t.clone().requires_grad_() for t in (x, weight, bias))
        assert torch.autograd.gradcheck(lambda a, w, b, p=path: depthwise_conv(a, w, b, 1, (2, 7), path=p), inputs)


def test_path_choice_follows_the_measured_thresholds():
    x = torch.zeros(1, 4, 56, 56)
    assert choose_path(x, (STRIP_WIDTH, STRIP_WIDTH), (1, 1), (1, 1)) == "direct"
    assert choose_path(x, (51, STRIP_WIDTH), (1, 1), (1, 1)) == "direct"  # the height never falls off the cliff
    assert choose_path(x, (17, 17), (1, 1), (1, 1)) == "strips"
    assert choose_path(x, (FFT_MIN_WIDTH,) * 2, (1, 1), (1, 1)) == "fft"
    assert choose_path(x, (FFT_MIN_WIDTH,) * 2, (2, 2), (1, 1)) == "strips"
    assert choose_path(torch.zeros(1, 4, 56), (51,), (1,), (1,)) == "direct"


def test_fft_size_is_the_next_smooth_number():
    assert [fft_size(n) for n in (1, 7, 11, 13, 86, 97)] == [1, 8, 12, 15, 90, 100]


def test_bad_inputs_raise():
    x, weight, _ = _case((8, 8), (3, 3))
    with pytest.raises(ValueError, match="depthwise_conv: path must be one of direct, strips, fft"):
        depthwise_conv(x, weight, path="winograd")
    with pytest.raises(ValueError, match=r"depthwise_conv: expected x \(N, C, \*S\) and weight \(C, 1, \*k\)"):
        depthwise_conv(x, weight[:2])
    with pytest.raises(ValueError, match="depthwise_conv: kernel .* is larger than the padded input"):
        depthwise_conv(x, torch.zeros(3, 1, 11, 11, dtype=torch.float64), path="fft")


def test_largekernel_suite_runs_quick_and_both_sides_agree(tmp_path, monkeypatch, capsys):
    import json

    import convzoo.benchmarks  # noqa: F401  (registers the suites)
    from convzoo.cli import main
    from convzoo.registry import SUITES

    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))
    full = SUITES.get("largekernel").obj()
    assert [c.name.split()[0] for c in full] == [f"k{k}" for k in range(3, 52, 2)]
    assert all(c.name.endswith("8x96x56x56") and c.same_output for c in full)
    assert main(["bench", "largekernel", "--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    assert "### convzoo bench largekernel --quick" in capsys.readouterr().out
    data = json.loads((tmp_path / "bench-largekernel-quick.json").read_text())
    assert len(data["cases"]) == 3 and not data["skipped"]  # same_output: the harness checked A == B on each
    for case in data["cases"]:
        kernel = int(case["name"].split()[0][1:])
        assert case["a"]["params"] == case["b"]["params"] == 8 * kernel * kernel + 8
        assert case["a"]["macs"] == case["b"]["macs"]  # the module counts as the direct conv it replaces


def test_one_channel_3d_gradients_stay_correct():
    x, weight, bias = _case((7, 7, 7), (7, 7, 7), channels=1, batch=1)
    grads = []
    for run in (
        lambda a, w, b: F.conv3d(a.expand(-1, 2, -1, -1, -1), w.expand(2, -1, -1, -1, -1), b.expand(2), 2, 3, groups=2),
        lambda a, w, b: depthwise_conv(a, w, b, 2, 3),
    ):
        leaves = [t.clone().requires_grad_() for t in (x, weight, bias)]
        run(*leaves)[:, :1].sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for got, expected in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, expected)


def test_large_kernel_module_is_the_same_conv_run_by_the_path():
    conv = torch.nn.Conv1d(4, 4, 21, padding=10, groups=4)
    module = large_kernel_module(conv, path="strips")
    x = torch.randn(2, 4, 30)
    torch.testing.assert_close(module(x), conv(x))
    assert isinstance(module, torch.nn.Conv1d) and module.weight is conv.weight and module.bias is conv.bias
    assert module.macs((30,)) == 4 * 30 * 21
    assert module.state_dict().keys() == conv.state_dict().keys()
    with pytest.raises(ValueError, match="depthwise_conv: expected a depthwise conv"):
        large_kernel_module(torch.nn.Conv2d(4, 8, 3, groups=4))
    with pytest.raises(ValueError, match="depthwise_conv: path must be one of direct, strips, fft or None"):
        large_kernel_module(conv, path="cuda")


@pytest.mark.parametrize(
    ("kernel", "groups", "large"), [((31, 31), 4, True), ((3, 15), 4, True), ((13, 13), 4, False), ((31, 31), 1, False)]
)
def test_conv_spec_deploys_wide_depthwise_kernels_on_the_large_kernel_path(kernel, groups, large):
    torch.manual_seed(0)
    in_per_group = 4 // groups
    padding = (kernel[0] // 2, kernel[1] // 2)
    spec = ConvSpec(torch.randn(4, in_per_group, *kernel), torch.randn(4), (1, 1), padding, (1, 1), groups)
    module = spec.to_module()
    assert isinstance(module, nn.Conv2d)
    assert isinstance(module, DepthwiseConv2d) is large
    x = torch.randn(2, 4, 20, 20)
    expected = F.conv2d(x, spec.weight, spec.bias, padding=spec.padding, groups=groups)
    torch.testing.assert_close(module(x), expected, rtol=1e-4, atol=1e-4)


def test_traced_large_kernel_module_is_one_plain_conv():
    conv = large_kernel_module(nn.Conv2d(4, 4, 41, padding=20, groups=4))
    x = torch.randn(1, 4, 48, 48)
    assert choose_path(x, (41, 41), (1, 1), (1, 1)) == "fft"
    graph = str(torch.jit.trace(conv, x).inlined_graph)
    assert "fft" not in graph and graph.count("aten::_convolution") == 1
