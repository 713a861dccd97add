"""The eSCN GNN (S1): its energies are rotation-invariant and it learns a rotation-invariant molecular target."""

from __future__ import annotations

import pytest
import torch

from convzoo.registry import MODELS

o3 = pytest.importorskip("e3nn.o3", reason="eSCN needs e3nn (pip install convzoo[graph])")
pytestmark = pytest.mark.peer


def molecules(count: int, seed: int):
    """``count`` point clouds of 4-7 atoms of 3 types: ``types (V,)``, ``positions (V, 3)``, ``batch (V,)``."""
    g = torch.Generator().manual_seed(seed)
    types, pos, batch = [], [], []
    for m in range(count):
        k = int(torch.randint(4, 8, (1,), generator=g))
        types.append(torch.randint(0, 3, (k,), generator=g))
        pos.append(torch.randn(k, 3, generator=g))
        batch.append(torch.full((k,), m))
    return torch.cat(types), torch.cat(pos), torch.cat(batch)


def energy(types, pos, batch):
    """A rotation-invariant target: type-dependent pair terms plus each atom's squared 'dipole' |Σ_j r̂_ij e^{-d}|²,
    which needs directional (l = 1) information, so a model of distances alone cannot fit it exactly."""
    coupling = torch.tensor([[1.0, -0.5, 0.3], [-0.5, 0.8, -0.2], [0.3, -0.2, 0.5]])
    d = torch.cdist(pos, pos)
    same = (batch[:, None] == batch[None]).float().fill_diagonal_(0)
    w = torch.exp(-d) * same
    pair = 0.5 * (coupling[types][:, types] * w).sum(1)
    directions = (pos[None] - pos[:, None]) / d.clamp_min(1e-9)[..., None]  # (V, V, 3)
    dipole = (directions * w[..., None]).sum(1)  # (V, 3)
    return torch.zeros(int(batch.max()) + 1).index_add_(0, batch, pair + dipole.square().sum(1))


def _fit(model, data, target, steps):
    mean, std = target.mean(), target.std()
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(steps):
        loss = (model(*data) - (target - mean) / std).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, mean, std


def test_energies_are_rotation_invariant_and_gradients_finite():
    torch.manual_seed(0)
    model = MODELS.get("escn_gnn").obj(num_types=3)
    types, pos, batch = molecules(4, 0)
    energies = model(types, pos, batch)
    for seed in range(3):
        torch.manual_seed(seed)
        rotation = o3.rand_matrix()
        rotated = model(types, pos @ rotation.T + torch.randn(3), batch)  # rotated and translated
        assert (rotated - energies).abs().max() <= 1e-5 * (1 + energies.abs().max())
    energies.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_training_reduces_the_loss_on_a_rotation_invariant_target():
    torch.manual_seed(0)
    model = MODELS.get("escn_gnn").obj(num_types=3)
    data = molecules(16, 0)
    losses, _, _ = _fit(model, data, energy(*data), steps=40)
    assert losses[-1] < 0.3 * losses[0], losses


@pytest.mark.slow
def test_learns_the_target_on_held_out_molecules():
    torch.manual_seed(0)
    model = MODELS.get("escn_gnn").obj(num_types=3)
    train, test = molecules(128, 0), molecules(64, 1)
    _, mean, std = _fit(model, train, energy(*train), steps=150)
    with torch.no_grad():
        relative = (model(*test) * std + mean - energy(*test)).square().mean() / energy(*test).var()
    assert relative < 0.1, f"held-out MSE / variance = {relative:.3f}"


def test_bad_input_names_the_model():
    model = MODELS.get("escn_gnn").obj()
    with pytest.raises(ValueError, match="escn_gnn: expected types"):
        model(torch.zeros(3, dtype=torch.long), torch.randn(4, 3))
