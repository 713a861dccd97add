"""Focal sparse convolution (S43): the dilated sites and features equal a loop reference written from the paper's
steps, the output equals dense ``conv3d`` on that set (float64), only important sites dilate, gradients reach
the importance head (gradcheck), and errors."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.ops.focal_sparse_conv import FocalSparseConv3d, focal_sites
from convzoo.ops.sparse_conv3d import Voxels, sparse_conv3d


def _voxels(shape=(5, 6, 4), batch=2, channels=3, occupancy=0.2, seed=0) -> Voxels:
    g = torch.Generator().manual_seed(seed)
    coords = (torch.rand(batch, *shape, generator=g) < occupancy).nonzero()
    return Voxels(coords, torch.randn(len(coords), channels, generator=g, dtype=torch.float64), shape, batch)


def _grid(x: Voxels) -> torch.Tensor:
    grid = torch.zeros(x.batch_size, x.feats.shape[1], *x.shape, dtype=x.feats.dtype)
    for (b, i, j, k), f in zip(x.coords.tolist(), x.feats, strict=True):
        grid[b, :, i, j, k] = f
    return grid


def _reference(op: FocalSparseConv3d, x: Voxels) -> dict[tuple, torch.Tensor]:
    """Site → output features, by loops over sites and taps."""
    logits = F.conv3d(_grid(x), op.importance.weight, None, 1, 1)
    prob = torch.sigmoid(logits)
    taps = list(itertools.product(range(3), repeat=3))
    centre = taps.index((1, 1, 1))
    fore: dict[tuple, list] = {}
    back: dict[tuple, torch.Tensor] = {}
    for (b, i, j, k), f in zip(x.coords.tolist(), x.feats, strict=True):
        importance = prob[b, centre, i, j, k]
        f = f * importance
        if importance > op.threshold:
            fore.setdefault((b, i, j, k), [torch.zeros_like(f), []])
            fore[(b, i, j, k)][0] = fore[(b, i, j, k)][0] + f
            fore[(b, i, j, k)][1].append(torch.ones_like(importance))
            for t, (di, dj, dk) in enumerate(taps):
                q = (b, i + di - 1, j + dj - 1, k + dk - 1)
                inside = all(0 <= q[a + 1] < x.shape[a] for a in range(3))
                if t != centre and prob[b, t, i, j, k] >= op.threshold and inside:
                    fore.setdefault(q, [torch.zeros_like(f), []])[1].append(prob[b, t, i, j, k])
        else:
            back[(b, i, j, k)] = f
    feats = {s: v[0] * torch.stack(v[1]).mean() for s, v in fore.items()}
    for s, f in back.items():
        feats[s] = feats.get(s, 0) + f
    sites = sorted(feats)
    dilated = Voxels(torch.tensor(sites), torch.stack([feats[s] for s in sites]), x.shape, x.batch_size)
    dense = F.conv3d(_grid(dilated), op.conv.weight, None, 1, 1)
    return {s: dense[s[0], :, s[1], s[2], s[3]] for s in sites}


def test_equals_loop_reference_and_dilates_only_important_sites():
    x = _voxels()
    torch.manual_seed(0)
    op = FocalSparseConv3d(3, 4).double()
    y, importance = op(x, return_importance=True)
    assert 0 < int((importance > 0.5).sum()) < len(importance)  # some sites important, some not
    expected = _reference(op, x)
    assert set(map(tuple, y.coords.tolist())) == set(expected)
    assert torch.equal(y.coords[: len(x.coords)], x.coords)  # input sites first, in order
    torch.testing.assert_close(y.feats, torch.stack([expected[tuple(c)] for c in y.coords.tolist()]), rtol=0,
                               atol=1e-12)  # fmt: skip
    new = set(map(tuple, y.coords.tolist())) - set(map(tuple, x.coords.tolist()))
    important = [c for c, i in zip(x.coords.tolist(), importance, strict=True) if i > 0.5]

    def near(site, centre):
        return site[0] == centre[0] and max(abs(a - b) for a, b in zip(site[1:], centre[1:], strict=True)) <= 1

    assert new and all(any(near(s, c) for c in important) for s in new)


def test_nothing_important_is_a_submanifold_conv_of_half_the_features():
    x = _voxels()
    op = FocalSparseConv3d(3, 4).double()
    torch.nn.init.zeros_(op.importance.weight)  # σ(0) = 0.5, not > τ
    y = op(x)
    assert torch.equal(y.coords, x.coords)
    torch.testing.assert_close(y.feats, op.conv(x.replace(x.feats * 0.5)).feats, rtol=0, atol=1e-14)


def test_gradcheck_reaches_the_importance_head():
    x = _voxels(shape=(3, 3, 3), batch=1, channels=2, occupancy=0.4, seed=1)
    op = FocalSparseConv3d(2, 2).double()
    w_imp = op.importance.weight.detach()
    direction = torch.randn_like(w_imp)

    def run(feats, step, w):  # the importance weight moves along one direction: a directional gradcheck
        logits = sparse_conv3d(feats, w_imp + step * direction, op.importance.rulebook(x))
        dilated, _ = focal_sites(x.replace(feats), logits, 3, 0.5)
        return sparse_conv3d(dilated.feats, w, op.conv.rulebook(dilated))

    args = (x.feats.clone().requires_grad_(), torch.zeros((), dtype=torch.float64, requires_grad=True),
            op.conv.weight.detach().clone().requires_grad_())  # fmt: skip
    torch.autograd.gradcheck(run, args)
    assert torch.autograd.grad(run(*args).sum(), args[1])[0].abs() > 0


def test_registered_and_errors():
    assert isinstance(create_op("focal_sparse_conv3d", 3, 4, dim=3), FocalSparseConv3d)
    with pytest.raises(ValueError, match="kernel_size must be one odd int"):
        FocalSparseConv3d(3, 4, kernel_size=(3, 3, 3))
    with pytest.raises(ValueError, match="stride must be 1"):
        FocalSparseConv3d(3, 4, stride=2)
    with pytest.raises(ValueError, match="threshold must be a number in"):
        FocalSparseConv3d(3, 4, threshold=1.5)
