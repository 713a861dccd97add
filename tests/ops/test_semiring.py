"""Semiring convolution (S47): (+,×) is F.conv, (max,+)/(min,+) are scipy/scikit-image grey morphology exactly,
1-d full (+,×) is numpy.polymul, every semiring matches a loop reference and has gradients; the morph layer."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.ops.semiring import SEMIRINGS, semiring_conv

SCALAR = {
    "plus_times": (lambda a, b: a + b, lambda a, b: a * b, 0.0),
    "max_plus": (max, lambda a, b: a + b, -np.inf),
    "min_plus": (min, lambda a, b: a + b, np.inf),
    "or_and": (max, min, -np.inf),
    "log_sum_exp": (np.logaddexp, lambda a, b: a + b, -np.inf),
}


def slow_semiring_conv2d(x, w, semiring, stride, padding, groups):
    """The definition, one output at a time in Python scalars: ⊕ over (i, δ) of w[o, i, δ] ⊗ x[i, s·p+δ−pad]."""
    plus, times, zero = SCALAR[semiring]
    x, w = x.numpy(), w.numpy()
    n, c_in, h, wd = x.shape
    c_out, per_group, kh, kw = w.shape
    out_h, out_w = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = np.empty((n, c_out, out_h, out_w))
    for b, o, p, q in itertools.product(range(n), range(c_out), range(out_h), range(out_w)):
        g = o // (c_out // groups)
        acc = zero
        for i, dy, dx in itertools.product(range(per_group), range(kh), range(kw)):
            y, xx = p * stride + dy - padding, q * stride + dx - padding
            value = x[b, g * per_group + i, y, xx] if 0 <= y < h and 0 <= xx < wd else zero
            acc = plus(acc, times(w[o, i, dy, dx], value))
        out[b, o, p, q] = acc
    return torch.from_numpy(out)


@pytest.mark.parametrize("semiring", list(SEMIRINGS))
@pytest.mark.parametrize(("stride", "groups"), [(1, 1), (2, 2)])
def test_every_semiring_equals_the_loop_reference(semiring, stride, groups):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    w = torch.randn(6, 4 // groups, 3, 3, dtype=torch.float64)
    got = semiring_conv(x, w, semiring=semiring, stride=stride, padding=1, groups=groups)
    torch.testing.assert_close(got, slow_semiring_conv2d(x, w, semiring, stride, 1, groups))


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_plus_times_op_equals_torch_conv_and_has_a_dense_kernel(dim):
    op = create_op("semiring", 4, 6, 3, stride=2, dim=dim, semiring="plus_times", groups=2).double()
    x = torch.randn(2, 4, *([7] * dim), dtype=torch.float64)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dim]
    expected = conv(x, op.weight, op.bias, stride=2, padding=1, groups=2)
    torch.testing.assert_close(op(x), expected, rtol=0, atol=0)
    torch.testing.assert_close(op.dense_kernel()(x), expected, rtol=0, atol=0)


def test_plus_times_on_the_loop_path_equals_torch_conv():
    """The generic path (forced with a bool-free copy of the ring) agrees with F.conv: the algebra, not a shortcut."""
    x, w = torch.randn(1, 3, 6, 6, dtype=torch.float64), torch.randn(2, 3, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(slow_semiring_conv2d(x, w, "plus_times", 1, 1, 1), F.conv2d(x, w, padding=1))


def test_max_plus_equals_scipy_grey_dilation_exactly_flat_and_non_flat():
    ndi = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    image = rng.random((17, 23))
    for structure in (np.zeros((3, 3)), rng.random((3, 5)), rng.normal(size=(5, 3))):
        weight = torch.from_numpy(structure[::-1, ::-1].copy())[None, None]  # cross-correlation: flipped element
        pad = (structure.shape[0] // 2, structure.shape[1] // 2)
        ours = semiring_conv(torch.from_numpy(image)[None, None], weight, padding=pad)[0, 0].numpy()
        reference = ndi.grey_dilation(image, structure=structure, mode="constant", cval=-np.inf)
        assert np.array_equal(ours, reference)


def test_min_plus_equals_scipy_grey_erosion_exactly():
    ndi = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(1)
    image = rng.random((3, 19, 14))
    for structure in (np.zeros((3, 3, 3)), rng.random((3, 3, 5))):
        weight = torch.from_numpy(-structure)[None, None]  # erosion subtracts the element, unflipped
        pad = tuple(k // 2 for k in structure.shape)
        ours = semiring_conv(torch.from_numpy(image)[None, None], weight, semiring="min_plus", padding=pad)[0, 0]
        reference = ndi.grey_erosion(image, structure=structure, mode="constant", cval=np.inf)
        assert np.array_equal(ours.numpy(), reference)


def test_flat_max_and_min_plus_equal_scikit_image_dilation_and_erosion():
    morphology = pytest.importorskip("skimage.morphology")
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, size=(20, 21)).astype(np.float64)
    footprint = np.array([[0, 1, 0], [1, 1, 1], [1, 1, 0]], dtype=bool)  # asymmetric: catches a missing flip
    flat = torch.from_numpy(np.where(footprint, 0.0, -np.inf))
    x = torch.from_numpy(image)[None, None]
    # scikit-image takes the max over the footprint as placed on each pixel (no mirroring, unlike scipy's
    # grey_dilation with a structure), which is the cross-correlation form: the footprint is the weight as it is
    dilated = semiring_conv(x, flat[None, None], padding=1)[0, 0].numpy()
    eroded = semiring_conv(x, (-flat)[None, None], semiring="min_plus", padding=1)[0, 0].numpy()
    assert np.array_equal(dilated, morphology.dilation(image, footprint))
    assert np.array_equal(eroded, morphology.erosion(image, footprint))


def test_full_plus_times_convolution_is_numpy_polymul():
    rng = np.random.default_rng(3)
    a, b = rng.integers(-5, 6, size=7).astype(np.float64), rng.integers(-5, 6, size=4).astype(np.float64)
    x = torch.from_numpy(a)[None, None]
    weight = torch.from_numpy(b[::-1].copy())[None, None]  # convolution = correlation with the flipped kernel
    full = semiring_conv(x, weight, semiring="plus_times", padding=len(b) - 1)[0, 0].numpy()
    assert np.array_equal(full, np.polymul(a, b))


def test_max_plus_full_convolution_is_the_tropical_polynomial_product():
    a, b = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([1.0, -3.0])
    full = semiring_conv(a[None, None], b.flip(0)[None, None], padding=1)[0, 0]
    expected = torch.tensor([max(a[i] + b[n - i] for i in range(3) if 0 <= n - i < 2) for n in range(4)])
    torch.testing.assert_close(full, expected)


def test_or_and_on_booleans_is_boolean_correlation():
    """(∨, ∧): y[p] = ∨_k (w[k] ∧ x[p + k]): is any set bit of x at an offset the pattern marks?"""
    text = torch.tensor([[[1, 0, 0, 0, 0, 1, 0]]], dtype=torch.bool)
    pattern = torch.tensor([[[1, 0, 1]]], dtype=torch.bool)  # offsets 0 and 2
    found = semiring_conv(text, pattern, semiring="or_and")
    assert found.dtype == torch.bool
    assert found[0, 0].tolist() == [True, False, False, True, False]


@pytest.mark.parametrize("semiring", list(SEMIRINGS))
def test_gradients_in_float64(semiring):
    torch.manual_seed(0)
    op = create_op("semiring", 3, 4, 3, stride=2, semiring=semiring).double()
    x = torch.randn(2, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op, (x,))
    op(x).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in op.parameters())


def test_inference_in_place_path_equals_the_autograd_path():
    op = create_op("semiring", 4, 4, 5, groups=4)
    x = torch.randn(1, 4, 12, 12)
    with torch.no_grad():
        fast = op(x)
    torch.testing.assert_close(op(x), fast, rtol=0, atol=0)


@pytest.mark.parametrize("tile", [7, 64, 10_000])  # rows of one plane, whole planes of a few groups, everything
@pytest.mark.parametrize(("semiring", "dim", "stride"), [("max_plus", 2, 1), ("min_plus", 3, 2), ("or_and", 1, 2)])
def test_tiled_inference_equals_the_autograd_path(monkeypatch, tile, semiring, dim, stride):
    from convzoo.ops import semiring as semiring_module

    monkeypatch.setattr(semiring_module, "TILE_ELEMENTS", tile)
    op = create_op("semiring", 6, 12, 3, stride=stride, dim=dim, semiring=semiring, groups=6).double()
    x = torch.randn(2, 6, *([9] * dim), dtype=torch.float64)
    with torch.no_grad():
        tiled = op(x)
    torch.testing.assert_close(tiled, op(x), rtol=0, atol=0)


def test_errors_name_the_op_and_value():
    with pytest.raises(ValueError, match=r"semiring: semiring must be one of .*got 'tropical'"):
        create_op("semiring", 2, 2, semiring="tropical")
    with pytest.raises(NotImplementedError, match="semiring: semiring 'max_plus' is not linear"):
        create_op("semiring", 2, 2).dense_kernel()
    with pytest.raises(ValueError, match="semiring: in_channels .* divisible by groups"):
        create_op("semiring", 3, 6, groups=2)
    with pytest.raises(ValueError, match="semiring_conv: kernel"):
        semiring_conv(torch.randn(1, 1, 2), torch.randn(1, 1, 5))


def test_morph_layer_learns_a_dilation():
    """The learnable morphological layer fits a target made by a max filter better than at its start."""
    torch.manual_seed(0)
    op = create_op("morph", 1, 1, 3)
    x = torch.randn(8, 1, 12, 12)
    target = F.max_pool2d(x, 3, stride=1, padding=1) + 0.5
    optimizer = torch.optim.Adam(op.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        loss = F.mse_loss(op(x), target)
        first = first if first is not None else loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05 * first


def test_macs_formula_equals_the_flop_counter_where_it_can_see():
    from convzoo.profile.counting import count_macs

    x = torch.randn(2, 4, 7, 6)
    linear = create_op("semiring", 4, 6, 3, stride=2, semiring="plus_times", groups=2)
    flop_counter = torch.utils.flop_counter.FlopCounterMode(display=False)
    with flop_counter, torch.no_grad():
        linear(x)
    assert count_macs(linear, x) == flop_counter.get_total_flops() // 2
    assert count_macs(create_op("semiring", 4, 6, 3, stride=2, groups=2), x) == count_macs(linear, x)
