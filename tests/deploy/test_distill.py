"""distill (S84): exact recovery of a true low-order system, error vs order, recurrence == convolution."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_op
from convzoo.deploy.distill import (
    ModalFit,
    distill,
    distillation_errors,
    fit_modal,
    hankel_singular_values,
    modal_response,
)


def _true_system(channels=3, pairs=3, length=120, seed=0):
    """A response that is exactly an order-2·pairs real recurrence: h_k = Σ_n 2 Re(R_n λ_n^(k-1)) by loops."""
    g = torch.Generator().manual_seed(seed)
    radius = 0.6 + 0.3 * torch.rand(channels, pairs, generator=g, dtype=torch.float64)
    angle = 3.0 * torch.rand(channels, pairs, generator=g, dtype=torch.float64)
    residue = torch.randn(channels, pairs, 2, generator=g, dtype=torch.float64)
    direct = torch.randn(channels, generator=g, dtype=torch.float64)
    h = torch.zeros(channels, length, dtype=torch.float64)
    h[:, 0] = direct
    for k in range(1, length):
        for c in range(channels):
            for n in range(pairs):
                lam = complex(radius[c, n] * torch.cos(angle[c, n]), radius[c, n] * torch.sin(angle[c, n]))
                res = complex(residue[c, n, 0], residue[c, n, 1])
                h[c, k] += 2 * (res * lam ** (k - 1)).real
    return h


def test_an_exact_low_order_response_is_recovered_at_its_order():
    h = _true_system()
    errors = distillation_errors(h, orders=(2, 4, 6, 8))
    assert errors[6] < 1e-9 and errors[8] < 1e-9  # order 6 = 3 conjugate pairs: exact
    assert errors[2] > errors[4] > 1e-4  # too few modes cannot be exact
    fit = fit_modal(h, 6)
    torch.testing.assert_close(modal_response(fit, h.shape[-1]), h, rtol=1e-9, atol=1e-9)
    assert (fit.poles.abs() <= 1 + 1e-12).all()


def test_error_is_bounded_below_by_the_hankel_singular_value():
    g = torch.Generator().manual_seed(1)
    decay = torch.exp(-torch.arange(200, dtype=torch.float64) / 30)
    h = torch.randn(2, 200, generator=g, dtype=torch.float64) * decay  # a rich, non-low-order response
    sigma = hankel_singular_values(h, hankel_size=64)  # (C, 64)
    errors = distillation_errors(h, orders=(2, 8, 24), hankel_size=64)
    assert errors[2] > errors[8] > errors[24]
    for d, error in errors.items():
        # an order-d fit has a rank-d Hankel matrix, so (Eckart–Young) σ_{d+1}(H_h) ≤ ||H_e||₂ ≤ ||H_e||_F
        # ≤ sqrt(m) ||e||₂ with m = 64 rows: the ℓ2 error can never beat σ_{d+1} / 8, channel by channel
        absolute = error * h[:, 1:].norm().item()
        assert absolute >= sigma[:, d].max().item() / 8


def test_recurrence_steps_equal_the_distilled_convolution_and_a_loop():
    h = _true_system(channels=2, pairs=2, length=60)
    module = distill(h, 4)
    x = torch.randn(2, 2, 60, dtype=torch.float64)
    response = modal_response(module.fit(), 60)  # (C, L)
    expected = torch.zeros_like(x)
    for t in range(60):
        for k in range(t + 1):
            expected[..., t] += response[:, k] * x[..., t - k]
    state, outputs = module.init_state(2), []
    for t in range(60):
        y, state = module.step(x[..., t], state)
        outputs.append(y)
    torch.testing.assert_close(torch.stack(outputs, -1), expected, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(module(x), expected, rtol=1e-9, atol=1e-9)
    assert state.shape == (2, 2, 4)  # O(d) state per channel, whatever the position


def test_distilled_long_conv_reproduces_the_op():
    torch.manual_seed(0)
    op = create_op("long_conv", 4, 4, 256, dim=1).double()
    module = distill(op, 8)
    assert module.relative_error < 1e-3
    x = torch.randn(1, 4, 256, dtype=torch.float64)
    with torch.no_grad():
        ref = op(x)
        err = (module(x) - ref).norm() / ref.norm()
    assert err < 1e-3


def test_refinement_never_worsens_the_fit():
    h = _true_system(pairs=3, length=80) + 1e-3 * torch.randn(3, 80, dtype=torch.float64)
    plain, refined = distill(h, 4), distill(h, 4, refine_steps=30, refine_lr=1e-3)
    assert refined.relative_error <= plain.relative_error + 1e-15


def test_bad_arguments():
    h = torch.randn(2, 20, dtype=torch.float64)
    with pytest.raises(ValueError, match="distill: order must be a positive int, got 0"):
        fit_modal(h, 0)
    with pytest.raises(ValueError, match="distill: order must be at most 9 for a filter of length 20"):
        fit_modal(h, 12)
    with pytest.raises(ValueError, match=r"distill: expected a response of shape \(C, K\)"):
        fit_modal(torch.randn(20), 2)
    module = distill(h, 2)
    with pytest.raises(ValueError, match=r"distill: expected input \(N, 2, L\), got \(1, 3, 5\)"):
        module(torch.randn(1, 3, 5))
    assert isinstance(module.fit(), ModalFit)
