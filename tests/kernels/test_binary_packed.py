"""Packed binary conv (S8): exact integer dot products against the float reference, scaled output, bench suite."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_op
from convzoo.benchmarks.binary import Int8Conv
from convzoo.core.conv import conv_nd
from convzoo.deploy.packed_binary import PackedBinaryConv
from convzoo.kernels import binary_native
from convzoo.kernels.binary_packed import pack_bits, packed_conv, popcount, unpack_bits
from convzoo.profile import MachinePeaks
from convzoo.profile.bench import run_suite


def _signs(x):
    return torch.where(x >= 0, 1.0, -1.0).double()


def test_popcount_matches_python():
    torch.manual_seed(0)
    words = torch.randint(-(2**63), 2**63 - 1, (500,), dtype=torch.int64)
    words[:4] = torch.tensor([0, -1, -(2**63), 2**63 - 1])
    expected = [bin(w & (2**64 - 1)).count("1") for w in words.tolist()]
    assert popcount(words).tolist() == expected


@pytest.mark.parametrize("channels", [3, 64, 65, 130])
def test_pack_layout_and_roundtrip(channels):
    torch.manual_seed(channels)
    x = torch.randn(2, channels, 3, 2)
    x[0, 0, 0, 0] = 0.0
    words = pack_bits(x)
    assert words.shape == (2, 3, 2, -(-channels // 64)) and words.dtype == torch.int64
    for c in (0, channels - 1):  # bit c % 64 of word c // 64 holds channel c
        bit = (words[1, 2, 1, c // 64].item() >> (c % 64)) & 1
        assert bit == int(x[1, c, 2, 1].item() >= 0)
    assert torch.equal(unpack_bits(words, channels), _signs(x).float())


@pytest.mark.parametrize("channels", [3, 64, 65, 130])
@pytest.mark.parametrize("stride", [1, 2])
def test_packed_integers_equal_float_dot_products(channels, stride):
    generator = torch.Generator().manual_seed(channels * 10 + stride)
    for size, kernel in (((7, 8), 3), ((8, 7), 3), ((1, 1), 3), ((6, 5), 5), ((5,), 3), ((3, 4, 3), 3)):
        dim = len(size)
        x = torch.randn(2, channels, *size, generator=generator)
        weight = torch.randn(4, channels, *(kernel,) * dim, generator=generator)
        dots = packed_conv(pack_bits(x), pack_bits(weight), channels, size, (stride,) * dim)
        # float reference: ±1 tensors, zero padding (a padded position is 0), float64 sums of integers
        expected = conv_nd(_signs(x), _signs(weight), stride=stride, padding=kernel // 2)
        assert dots.dtype == torch.int64
        assert torch.equal(dots, expected.round().long()), (channels, stride, size)


@pytest.mark.parametrize(("mode", "use_native"), [("xnor", False), ("xnor", True), ("bwn", True)])
@pytest.mark.parametrize(("channels", "dim", "stride"), [(3, 2, 1), (65, 2, 2), (130, 1, 2), (64, 3, 1)])
def test_scaled_output_equals_float_op(mode, use_native, channels, dim, stride):
    torch.manual_seed(0)
    op = create_op("binary", channels, 5, 3, stride, dim=dim, mode=mode).eval()
    with torch.no_grad():
        op.bias.normal_()
    packed = PackedBinaryConv.from_binary(op)
    packed.use_native = use_native
    x = torch.randn(2, channels, *(5,) * dim)
    x[0, 0] = 0.0
    with torch.no_grad():
        torch.testing.assert_close(packed(x), op(x), rtol=1e-5, atol=1e-5)
    if mode == "bwn":
        expected = "unpacked-float"
    else:
        expected = f"native-{binary_native.isa()}" if use_native and binary_native.available() else "packed-torch"
    assert f"path={expected}" in repr(packed)
    assert set(packed.state_dict()) == {"weight_words", "alpha", "bias"}


def test_bench_suite_quick():
    peaks = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=None, copy_gbps=5.0)
    result = run_suite("binary", quick=True, threads=1, peaks=peaks)
    names = [r.name for r in result.results]
    shapes = [f"1x{c}x{s}x{s} {b}" for c, s in ((16, 8), (32, 4)) for b in ("fp32", "int8", "packed-torch")]
    assert names == [*shapes, "1x3x32² resnet18", "1x3x32² resnet18 channels-last"]
    assert all(r.a.median_ms > 0 and r.b.median_ms > 0 for r in result.results)
    path = PackedBinaryConv(1, 1, (3, 3), (1, 1)).path
    assert all(path in r.a.label for r in result.results)


def test_int8_peer_is_a_faithful_int8_conv():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8, 8)
    dense = torch.nn.Conv2d(16, 16, 3, padding=1, bias=False).eval()
    with torch.no_grad():
        reference, int8 = dense(x), Int8Conv(dense, x)(x)
    # int8 rounding only: well under 5% of the output range (a wrong scale or layout is off by far more)
    assert (int8 - reference).abs().max() < 0.05 * reference.abs().max()
    assert "quantized" in type(Int8Conv(dense, x).conv).__module__


def test_packed_form_refuses_to_be_trained_through():
    packed = PackedBinaryConv(4, 2, (3, 3), (1, 1))
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    with pytest.raises(RuntimeError, match="an inference form, through which no gradient flows"):
        packed(x)
    with torch.no_grad():
        assert packed(x).shape == (1, 2, 5, 5)


def test_packed_errors():
    with pytest.raises(ValueError, match="binary: mode must be one of bwn, xnor, got 'and'"):
        PackedBinaryConv(2, 2, (3, 3), (1, 1), mode="and")
    packed = PackedBinaryConv(4, 2, (3, 3), (1, 1))
    with pytest.raises(ValueError, match=r"expected input \(N, 4, 2 spatial dims\), got \(1, 3, 5, 5\)"):
        packed(torch.randn(1, 3, 5, 5))


def test_macs_formula():
    packed = PackedBinaryConv(3, 4, (3, 3), (2, 2))
    # 4 · 3 · 9 binary MACs at each of ceil(5/2) · ceil(6/2) = 9 positions, plus the 9-tap K map there
    assert packed.macs((5, 6)) == 4 * 3 * 9 * 9 + 9 * 9
