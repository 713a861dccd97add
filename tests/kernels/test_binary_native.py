"""The native packed XNOR kernels (C++): the same integers as the pure-PyTorch path and the float reference.

Skipped where the extension was not built, except when ``CONVZOO_REQUIRE_NATIVE=1`` (set by ``make test``
on machines with a C++ compiler), where a missing extension is a failure.
"""

from __future__ import annotations

import os

import pytest
import torch

from convzoo import create_op
from convzoo.core.conv import conv_nd
from convzoo.deploy.packed_binary import PackedBinaryConv
from convzoo.kernels import binary_native
from convzoo.kernels.binary_packed import pack_bits, packed_conv

REQUIRED = os.environ.get("CONVZOO_REQUIRE_NATIVE") == "1"


def test_built_when_required():
    if not REQUIRED and not binary_native.available():
        pytest.skip(f"native extension not built: {binary_native.unavailable_reason()}")
    assert binary_native.available(), binary_native.unavailable_reason()


needs_native = pytest.mark.skipif(
    not binary_native.available(), reason=f"native extension not built: {binary_native.unavailable_reason()}"
)


@pytest.fixture(params=binary_native.isas() if binary_native.available() else ["none"])
def isa(request):
    """Each instruction set this CPU supports, restored to the default afterwards."""
    if request.param == "none":
        pytest.skip(f"native extension not built: {binary_native.unavailable_reason()}")
    default = binary_native.isa()
    binary_native.set_isa(request.param)
    yield request.param
    binary_native.set_isa(default)


def _signs(x):
    return torch.where(x >= 0, 1.0, -1.0).double()


# (channels, out_channels, size, kernel, stride): words 1-4, channel tails, out channels around the
# 32-channel register block, sizes smaller than the kernel, mixed strides, 1-d and 3-d
CASES = [
    (3, 5, (7, 8), 3, (1, 1)),
    (64, 64, (9, 9), 3, (1, 1)),
    (64, 33, (8, 7), 3, (2, 2)),
    (65, 31, (6, 5), 5, (2, 1)),
    (130, 40, (1, 1), 3, (1, 1)),
    (200, 7, (2, 3), 3, (2, 2)),
    (1, 3, (5, 6), 1, (2, 2)),
    (96, 64, (13,), 7, (3,)),
    (70, 9, (3, 4, 5), 3, (1, 2, 1)),
    (256, 32, (7, 7), 3, (1, 1)),
]


@pytest.mark.parametrize(("channels", "out_channels", "size", "kernel", "stride"), CASES)
def test_integers_equal_reference(isa, channels, out_channels, size, kernel, stride):
    generator = torch.Generator().manual_seed(channels + out_channels)
    dim = len(size)
    x = torch.randn(2, channels, *size, generator=generator)
    x[0, :, 0] = 0.0  # real zeros binarise to +1
    weight = torch.randn(out_channels, channels, *(kernel,) * dim, generator=generator)
    x_words, w_words = pack_bits(x), pack_bits(weight)
    dots = binary_native.conv(x_words, w_words, channels, stride)
    assert dots.dtype == torch.int64 and dots.shape[:2] == (2, out_channels)
    assert torch.equal(dots, packed_conv(x_words, w_words, channels, size, stride)), isa
    # independent float reference: ±1 tensors, zero padding (a padded position is 0), float64 sums
    expected = conv_nd(_signs(x), _signs(weight), stride=stride, padding=kernel // 2)
    assert torch.equal(dots, expected.round().long()), isa


@pytest.mark.parametrize("channels", [1, 16, 63, 64, 65, 150])
def test_pack_equals_torch_packing(isa, channels):
    torch.manual_seed(channels)
    x = torch.randn(3, channels, 4, 5)
    x[0, :, 1, 1] = 0.0
    x[1, :, 2, 2] = -0.0
    words, mean_abs = binary_native.pack(x)
    assert torch.equal(words, pack_bits(x))
    torch.testing.assert_close(mean_abs, x.abs().mean(dim=1, keepdim=True))
    # channels-last memory is read in place, with the same result
    words_cl, _ = binary_native.pack(x.contiguous(memory_format=torch.channels_last))
    assert torch.equal(words_cl, words)


def test_scaled_output_equals_float_op(isa):
    torch.manual_seed(0)
    op = create_op("binary", 70, 40, 3, 2, mode="xnor").eval()
    with torch.no_grad():
        op.bias.normal_()
    packed = PackedBinaryConv.from_binary(op)
    assert packed.path == f"native-{isa}"
    x = torch.randn(2, 70, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(packed(x), op(x), rtol=1e-5, atol=1e-5)
        packed.use_native = False
        reference = packed(x)
        packed.use_native = True
        # same integers, the same float operations in the same order: equal up to the K map's rounding
        torch.testing.assert_close(packed(x), reference, rtol=1e-6, atol=1e-6)


@needs_native
def test_threads_give_identical_results():
    torch.manual_seed(1)
    x_words, w_words = pack_bits(torch.randn(3, 130, 11, 9)), pack_bits(torch.randn(64, 130, 3, 3))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = binary_native.conv(x_words, w_words, 130, (1, 1))
        torch.set_num_threads(2)
        two = binary_native.conv(x_words, w_words, 130, (1, 1))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)


@needs_native
def test_errors_name_what_was_given():
    words = pack_bits(torch.randn(1, 70, 4, 4))
    with pytest.raises(RuntimeError, match="unknown or unsupported instruction set 'neon'"):
        binary_native.set_isa("neon")
    with pytest.raises(RuntimeError, match="same number of words"):
        binary_native.conv(words, pack_bits(torch.randn(2, 3, 3, 3)), 70, (1, 1))
    with pytest.raises(RuntimeError, match="in_channels does not match"):
        binary_native.conv(words, pack_bits(torch.randn(2, 70, 3, 3)), 150, (1, 1))
    with pytest.raises(RuntimeError, match="kernel sizes must be odd"):
        binary_native.conv(words, pack_bits(torch.randn(2, 70, 2, 2)), 70, (1, 1))
    with pytest.raises(ValueError, match=r"1-3 spatial dims, got \(1, 4, 4, 2\), \(2, 3, 3, 2\) and \(1,\)"):
        binary_native.conv(words, pack_bits(torch.randn(2, 70, 3, 3)), 70, (1,))


@needs_native
def test_prepared_weights_give_the_same_integers_and_must_match():
    torch.manual_seed(2)
    x_words, w_words = pack_bits(torch.randn(2, 70, 6, 5)), pack_bits(torch.randn(40, 70, 3, 3))
    prepared = binary_native.prepare(w_words)
    assert torch.equal(
        binary_native.conv(x_words, w_words, 70, (1, 1), prepared=prepared),
        packed_conv(x_words, w_words, 70, (6, 5), (1, 1)),
    )
    other = binary_native.prepare(pack_bits(torch.randn(8, 70, 3, 3)))
    with pytest.raises(RuntimeError, match=r"prepared weights do not match w_words"):
        binary_native.conv(x_words, w_words, 70, (1, 1), prepared=other)


@needs_native
def test_module_relayouts_its_weights_again_when_they_change():
    torch.manual_seed(3)
    first, second = (create_op("binary", 8, 8, 3, bias=False).eval() for _ in range(2))
    packed = PackedBinaryConv.from_binary(first)
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        packed(x)  # caches the first weights' layout
        packed.load_state_dict(PackedBinaryConv.from_binary(second).state_dict())  # in place: a new version
        torch.testing.assert_close(packed(x), second(x), rtol=1e-5, atol=1e-5)
