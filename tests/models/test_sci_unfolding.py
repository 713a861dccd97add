"""CTM-SCI (S104): the data-fidelity step against the explicit projection onto {z : Φz = y}, the variance loss
against hand-computed values, the window/grid groupings against slicing, the released configuration's count."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo.models import create_model
from convzoo.models.sci_unfolding import (
    _grids,
    _relative_index,
    _ungrids,
    _unwindows,
    _windows,
    data_step,
    unfolding_loss,
    variance_loss,
)
from convzoo.registry import MODELS


def _phi_matrix(masks: torch.Tensor) -> torch.Tensor:
    """The dense ``(H·W, T·H·W)`` matrix of ``x ↦ Σ_t M_t ⊙ x_t``, entry by entry."""
    t_len, h, w = masks.shape
    phi = torch.zeros(h * w, t_len * h * w, dtype=torch.float64)
    for t in range(t_len):
        for i in range(h):
            for j in range(w):
                phi[i * w + j, t * h * w + i * w + j] = masks[t, i, j]
    return phi


def test_data_step_is_the_projection_onto_the_measurement_set():
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(3, 4, 5, generator=g) < 0.5).double()
    masks[0][masks.sum(0) == 0] = 1  # every pixel seen
    x = torch.rand(2, 3, 4, 5, generator=g, dtype=torch.float64)
    y = torch.rand(2, 4, 5, generator=g, dtype=torch.float64) * 2
    phi = _phi_matrix(masks)
    for n in range(2):  # x̂ = x + Φᵀ (ΦΦᵀ)⁻¹ (y − Φx), solved densely
        xv, yv = x[n].reshape(-1), y[n].reshape(-1)
        expected = xv + phi.T @ torch.linalg.solve(phi @ phi.T, yv - phi @ xv)
        got = data_step(x[n : n + 1], y[n : n + 1], masks.expand(1, -1, -1, -1))[0]
        torch.testing.assert_close(got.reshape(-1), expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(phi @ got.reshape(-1), yv, rtol=0, atol=1e-12)  # Φ(x̂) = y exactly


def test_data_step_leaves_unseen_pixels_and_fits_the_rest():
    masks = torch.ones(2, 3, 3, dtype=torch.float64)
    masks[:, 1, 1] = 0  # no mask sees the centre
    x = torch.arange(18, dtype=torch.float64).view(1, 2, 3, 3)
    y = torch.full((1, 3, 3), 5.0, dtype=torch.float64)
    out = data_step(x, y, masks.unsqueeze(0))
    assert out[0, :, 1, 1].tolist() == x[0, :, 1, 1].tolist()
    seen = masks.sum(0) > 0
    torch.testing.assert_close((out * masks).sum(1)[0][seen], y[0][seen], rtol=0, atol=1e-12)


def test_variance_loss_equals_hand_computed_values():
    estimate = torch.tensor([0.5, 3.0], dtype=torch.float64)
    target = torch.tensor([0.0, 1.0], dtype=torch.float64)
    log_var = torch.tensor([0.0, math.log(2.0)], dtype=torch.float64)
    # (e⁰·0.25 + 0 + e^{−ln 2}·4 + ln 2) / 2 = (0.25 + 2 + 0.693147180559945) / 2
    assert variance_loss(estimate, log_var, target).item() == pytest.approx(1.4715735902799727, rel=1e-15)
    # its minimum over s is at s = log e²: the gradient vanishes there
    s = torch.tensor([math.log(0.25), math.log(4.0)], dtype=torch.float64, requires_grad=True)
    variance_loss(estimate, s, target).backward()
    torch.testing.assert_close(s.grad, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-15)


def test_unfolding_loss_adds_the_later_stages_mse():
    g = torch.Generator().manual_seed(1)
    recon = torch.rand(2, 3, 2, 4, 4, generator=g, dtype=torch.float64)
    target = torch.rand(2, 2, 4, 4, generator=g, dtype=torch.float64)
    log_var = torch.zeros(2, 2, 4, 4, dtype=torch.float64)  # s = 0: the first term is the plain MSE
    mse = [((recon[:, k] - target) ** 2).sum().item() / target.numel() for k in range(3)]
    assert unfolding_loss(recon, log_var, target).item() == pytest.approx(sum(mse), rel=1e-13)


def test_window_and_grid_groups_match_slicing():
    x = torch.randn(2, 4, 6, 8, 3)  # (B, D, H, W, C)
    size = (2, 3, 4)
    windows, grids = _windows(x, size), _grids(x, size)
    assert windows.shape == grids.shape == (2 * 2 * 2 * 2, 24, 3)
    torch.testing.assert_close(windows[0], x[0, :2, :3, :4].reshape(-1, 3), rtol=0, atol=0)
    torch.testing.assert_close(grids[0], x[0, ::2, ::2, ::2].reshape(-1, 3), rtol=0, atol=0)  # strides D/2, H/3, W/4
    assert torch.equal(_unwindows(windows, size, tuple(x.shape)), x)
    assert torch.equal(_ungrids(grids, size, tuple(x.shape)), x)


def test_relative_index_names_each_offset_once():
    window = (2, 2, 3)
    index = _relative_index(window)
    coords = [(a, b, c) for a in range(2) for b in range(2) for c in range(3)]
    seen: dict[tuple[int, int, int], int] = {}
    for i, p in enumerate(coords):
        for j, q in enumerate(coords):
            offset = (p[0] - q[0], p[1] - q[1], p[2] - q[2])
            assert seen.setdefault(offset, int(index[i, j])) == int(index[i, j])
    assert sorted(seen.values()) == list(range(3 * 3 * 5))  # one table row per distinct offset


def test_released_configuration_count():
    entry = MODELS.get("ctm_sci")
    assert entry.kind == "sci" and entry.papers == ("video-sci",)
    with torch.device("meta"):
        model = create_model("ctm_sci")
    assert sum(p.numel() for p in model.parameters()) == entry.info.params == 81_934_904


def test_forward_shapes_gradients_and_refusals():
    torch.manual_seed(0)
    model = create_model("ctm_sci", **MODELS.get("ctm_sci").info.test_cfg)
    masks = (torch.rand(8, 16, 16) < 0.5).float()
    y = torch.rand(2, 16, 16)
    recon, log_var = model(y, masks)
    assert recon.shape == (2, 2, 8, 16, 16) and log_var.shape == (2, 8, 16, 16)
    unfolding_loss(recon, log_var, torch.rand(2, 8, 16, 16)).backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="built for 8 frames"):
        model(y, masks[:4])
    with pytest.raises(ValueError, match="even H and W"):
        model(torch.rand(2, 15, 16), masks[:, :15])
    with pytest.raises(ValueError, match="do not fit"):
        model(y, masks[:, :8])
    with pytest.raises(ValueError, match="multiple of 4"):
        create_model("ctm_sci", channels=18)
