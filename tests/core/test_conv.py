"""conv_nd and same_padding: the one convolution entry point and its upstream-bug routes."""

import pytest
import torch
import torch.nn.functional as F

from convzoo.core.conv import conv_nd, same_padding


@pytest.mark.parametrize(
    ("channels", "out_channels", "groups", "size", "padding"),
    [
        (6, 18, 6, 1, 2),  # depthwise, channel multiplier 3: wrong by up to 1e38 on AMX CPUs without the route
        (6, 6, 2, 1, 2),  # two groups
        (6, 6, 6, 1, 1),
        (4, 4, 4, 2, 3),
        (6, 6, 1, 1, 2),
    ],
)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_conv3d_with_padding_past_the_input_matches_float64(
    channels, out_channels, groups, size, padding, dtype
):
    for seed in range(8):
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(2, channels, size, size, size, generator=generator)
        w = torch.randn(out_channels, channels // groups, 3, 3, 3, generator=generator)
        reference = F.conv3d(x.double(), w.double(), padding=padding, groups=groups)
        out = conv_nd(x.to(dtype), w.to(dtype), padding=padding, groups=groups)
        assert out.shape == reference.shape
        error = (out.double() - reference).abs().max().item()
        assert error <= 0.05 * reference.abs().max().item(), f"seed {seed}: {dtype} off by {error:.3g}"


def test_strided_conv3d_with_few_input_channels_has_exact_weight_gradients():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 7, 7, 7, dtype=torch.float64)
    w = torch.randn(3, 2, 7, 7, 7, dtype=torch.float64, requires_grad=True)
    conv_nd(x, w, stride=2, padding=3).sum().backward()
    # stride-1 then subsample is the same sum; the reference takes a different (unfold) path
    patches = F.pad(x, (3,) * 6).unfold(2, 7, 2).unfold(3, 7, 2).unfold(4, 7, 2)  # (1, 2, 4, 4, 4, 7, 7, 7)
    expected = patches.sum(dim=(0, 2, 3, 4)).expand(3, -1, -1, -1, -1)
    torch.testing.assert_close(w.grad, expected)


def test_conv_nd_picks_the_rank_from_the_weight():
    x = torch.randn(2, 4, 9)
    w = torch.randn(5, 4, 3)
    torch.testing.assert_close(conv_nd(x, w, padding=1), F.conv1d(x, w, padding=1))


def test_same_padding():
    assert same_padding((3, 5, 1)) == (1, 2, 0)
    assert same_padding((3, 3), dilation=2) == (2, 2)
    with pytest.raises(ValueError, match="same_padding: dilation must be an int or a tuple of 2 ints"):
        same_padding((3, 3), dilation=(1, 2, 3))


def test_run_conv_routes_plain_conv_modules_and_calls_others():
    from torch import nn

    from convzoo.core.conv import run_conv

    torch.manual_seed(0)
    conv = nn.Conv3d(8, 16, 5, padding=2, groups=8, bias=True).bfloat16()
    x = torch.randn(1, 8, 1, 1, 9).bfloat16()
    reference = F.conv3d(x.double(), conv.weight.double(), conv.bias.double(), padding=2, groups=8)
    out = run_conv(conv, x)
    assert (out.double() - reference).abs().max() <= 0.05 * reference.abs().max()  # NaN on AMX as conv(x)
    circular = nn.Conv1d(2, 2, 3, padding=1, padding_mode="circular")
    y = torch.randn(1, 2, 6)
    torch.testing.assert_close(run_conv(circular, y), circular(y))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "groups"),
    [((1, 1, 1), 1, 0, 1), ((3, 1, 1), 1, (1, 0, 0), 1), ((3, 1, 1), (2, 1, 1), (1, 0, 0), 4), ((1, 3, 1), 1, 0, 1)],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_channels_last_3d_input_keeps_its_layout_where_the_kernel_is_one_on_the_last_two_axes(
    kernel, stride, padding, groups, dtype
):
    # PyTorch's slow conv3d (float64; float32 single-threaded, batch < 16) writes these outputs contiguous
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 4, 3, dtype=dtype, requires_grad=True)
    w = torch.randn(6 * groups // 2, 8 // groups, *kernel, dtype=dtype, requires_grad=True)
    b = torch.randn(w.shape[0], dtype=dtype)
    out = conv_nd(
        x.contiguous(memory_format=torch.channels_last_3d), w, b, stride=stride, padding=padding, groups=groups
    )
    reference = F.conv3d(x, w, b, stride=stride, padding=padding, groups=groups)
    if kernel[1:] == (1, 1):
        assert out.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(out, reference)
    grad = torch.randn_like(reference)
    got = torch.autograd.grad(out, (x, w), grad)
    expected = torch.autograd.grad(reference, (x, w), grad)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


def test_one_channel_written_channels_last_3d_stays_channels_last_3d():
    # one channel is both layouts; its channel stride 1 marks it channels-last, as PyTorch reads it in 2-d
    torch.manual_seed(0)
    x = (torch.randn(2, 3, 5, 4, 3).contiguous(memory_format=torch.channels_last_3d)[:, :1] * 2).requires_grad_(True)
    assert x.stride(1) == 1
    w = torch.randn(4, 1, 1, 1, 1, requires_grad=True)
    out = conv_nd(x, w)
    assert out.is_contiguous(memory_format=torch.channels_last_3d) and not out.is_contiguous()
    reference = F.conv3d(x.detach().contiguous().requires_grad_(True), w)
    torch.testing.assert_close(out, reference)
    out.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, w.sum().item()))
