"""long_conv (S84 Hyena filter): FFT equals a loop causal convolution, causality, the implicit filter's formula."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo import create_op
from convzoo.ops.long_conv import direct_causal_conv, fft_causal_conv
from convzoo.testing import check_dense_kernel, check_op_contract


def loop_causal_conv(x, filters, skip=None):
    """``y[n, c, t] = Σ_{k ≤ t, k < K} h[c, k] x[n, c, t - k] (+ D[c] x[n, c, t])`` by explicit loops, float64."""
    batch, channels, length = x.shape
    y = torch.zeros(batch, channels, length, dtype=torch.float64)
    for t in range(length):
        for k in range(min(t + 1, filters.shape[-1])):
            y[:, :, t] += filters[:, k] * x[:, :, t - k]
    if skip is not None:
        y += skip[:, None] * x
    return y


@pytest.mark.parametrize(("length", "taps"), [(1, 5), (7, 5), (8, 8), (13, 4), (9, 20)])
def test_fft_and_direct_equal_the_loop_reference(length, taps):
    g = torch.Generator().manual_seed(length * 31 + taps)
    x = torch.randn(2, 3, length, generator=g, dtype=torch.float64)
    filters = torch.randn(3, taps, generator=g, dtype=torch.float64)
    skip = torch.randn(3, generator=g, dtype=torch.float64)
    expected = loop_causal_conv(x, filters, skip)
    torch.testing.assert_close(fft_causal_conv(x, filters, skip), expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(direct_causal_conv(x, filters, skip), expected, rtol=1e-10, atol=1e-10)


def test_op_equals_its_filter_applied_by_loops_and_its_direct_form():
    op = create_op("long_conv", 4, 4, 12, dim=1).double()
    x = torch.randn(2, 4, 17, dtype=torch.float64)
    with torch.no_grad():
        expected = loop_causal_conv(x, op.filters(), op.skip)
        torch.testing.assert_close(op(x), expected, rtol=1e-10, atol=1e-10)
        for method in ("fft", "direct"):
            torch.testing.assert_close(op.to_explicit(method)(x), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("length", [1, 7, 8, 40])
def test_contract_and_dense_kernel(length):
    op = create_op("long_conv", 8, 8, 16, dim=1)
    check_op_contract(op, (length,), fresh=create_op("long_conv", 8, 8, 16, dim=1))
    check_dense_kernel(op, (length,))


def test_causal_perturbing_the_future_leaves_the_past_unchanged():
    op = create_op("long_conv", 4, 4, 32, dim=1).double().eval()
    x = torch.randn(1, 4, 30, dtype=torch.float64)
    for t in (0, 11, 29):
        perturbed = x.clone()
        perturbed[..., t + 1 :] += 100 * torch.randn_like(perturbed[..., t + 1 :])
        with torch.no_grad():  # exact up to FFT rounding: a leak of the large perturbation would be ≫ 1e-11
            torch.testing.assert_close(op(perturbed)[..., : t + 1], op(x)[..., : t + 1], rtol=0, atol=1e-11)


def test_hyena_filter_formula():
    """h = MLP(PE) · exp(-t |δ|): the positional embedding and the decay rates follow the Hyena definitions."""
    op = create_op("long_conv", 6, 6, 10, dim=1, emb_dim=5, fast_decay_pct=0.3, slow_decay_pct=1.5, decay_target=1e-2)
    f = op.filter_fn
    length, bands = 10, 2
    for s in range(length):
        expected = [s / (length - 1)]
        expected += [math.cos(2 * math.pi * fb * s / length) for fb in (1e-4, 1.0)]
        expected += [-math.sin(2 * math.pi * fb * s / length) for fb in (1e-4, 1.0)]
        torch.testing.assert_close(f.embedding[s], torch.tensor(expected), rtol=1e-6, atol=1e-6)
    assert f.embedding.shape == (length, 1 + 2 * bands)
    rates = torch.linspace(math.log(1e-2) / 1.5, math.log(1e-2) / 0.3, 6)
    with torch.no_grad():
        raw = f.mlp(f.embedding)  # (K, C)
        decay = torch.exp(-f.embedding[:, :1] * rates.abs())  # (K, C)
        torch.testing.assert_close(op.filters(), (raw * decay).t())
    # the fastest-decaying channel reaches the target at t = fast_decay_pct
    assert math.exp(-0.3 * rates.abs()[-1].item()) == pytest.approx(1e-2)


def test_filter_mlp_shares_one_sine_and_has_the_default_width():
    op = create_op("long_conv", 8, 8, 16, dim=1)
    sines = [m for m in op.filter_fn.mlp if type(m).__name__ == "Sin"]
    assert len(sines) == 3 and all(s is sines[0] for s in sines)
    assert op.filter_fn.mlp[0].out_features == 64
    assert op.filter_fn.mlp[-1].bias is None and op.filter_fn.mlp[-1].out_features == 8


def test_no_skip_without_bias():
    op = create_op("long_conv", 4, 4, 8, dim=1, bias=False).double()
    x = torch.randn(1, 4, 9, dtype=torch.float64)
    assert op.skip is None
    with torch.no_grad():
        torch.testing.assert_close(op(x), loop_causal_conv(x, op.filters()), rtol=1e-10, atol=1e-10)


def test_bad_arguments():
    with pytest.raises(ValueError, match="long_conv: emb_dim must be an odd int ≥ 3.*got 4"):
        create_op("long_conv", 4, 4, 8, dim=1, emb_dim=4)
    with pytest.raises(ValueError, match="long_conv: stride must be at most 1"):
        create_op("long_conv", 4, 4, 8, 2, dim=1)
    with pytest.raises(ValueError, match="long_conv: in_channels must equal out_channels"):
        create_op("long_conv", 4, 8, 8, dim=1)
    with pytest.raises(ValueError, match="long_conv: supports dim in \\(1,\\), got dim=2"):
        create_op("long_conv", 4, 4, 8, dim=2)
    with pytest.raises(ValueError, match="long_conv: method must be one of fft, direct, got 'loop'"):
        create_op("long_conv", 4, 4, 8, dim=1).to_explicit("loop")
    with pytest.raises(ValueError, match="long_conv: decay_target must lie in \\(0, 1\\)"):
        create_op("long_conv", 4, 4, 8, dim=1, decay_target=2.0)
