"""Snapshot compressive imaging (S104): the forward model against a per-frame loop, its adjoint identity, and the
least-norm round trip."""

import pytest
import torch

from convzoo.train.sci import adjoint, least_norm, random_masks, snapshot


def test_snapshot_is_the_masked_sum_of_the_frames():
    x = torch.rand(2, 4, 5, 6, dtype=torch.float64)
    masks = random_masks(4, 5, 6, seed=1).double()
    expected = torch.zeros(2, 5, 6, dtype=torch.float64)
    for t in range(4):
        for i in range(5):
            for j in range(6):
                expected[:, i, j] += masks[t, i, j] * x[:, t, i, j]
    torch.testing.assert_close(snapshot(x, masks), expected)


def test_adjoint_identity_and_least_norm_round_trip():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(3, 8, 16, 16, generator=generator, dtype=torch.float64)
    y = torch.rand(3, 16, 16, generator=generator, dtype=torch.float64)
    masks = random_masks(8, 16, 16, seed=2).double()
    # ⟨Φx, y⟩ = ⟨x, Φᵀy⟩
    assert (snapshot(x, masks) * y).sum().item() == pytest.approx((x * adjoint(y, masks)).sum().item(), rel=1e-12)
    measured = snapshot(x, masks)
    seen = masks.sum(0) > 0
    torch.testing.assert_close(snapshot(least_norm(measured, masks), masks)[:, seen], measured[:, seen])
    with pytest.raises(ValueError, match="do not match"):
        snapshot(x, masks[:4])
