"""Sparse 3-D convolution (S43): submanifold and regular equal dense ``conv3d`` read at the active sites (float64),
the rulebook is reused per coordinate tensor, gradients (gradcheck), errors, and spconv as a peer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.ops import sparse_conv3d as sc
from convzoo.ops.sparse_conv3d import SparseConv3d, Voxels, rulebook


def _voxels(shape=(6, 7, 5), batch=2, channels=3, occupancy=0.25, seed=0, dtype=torch.float64) -> Voxels:
    g = torch.Generator().manual_seed(seed)
    grid = torch.rand(batch, *shape, generator=g) < occupancy
    coords = grid.nonzero()
    coords = coords[torch.randperm(len(coords), generator=g)]  # unsorted rows
    return Voxels(coords, torch.randn(len(coords), channels, generator=g, dtype=dtype), shape, batch)


def _dense_grid(x: Voxels) -> torch.Tensor:
    """The zero-filled grid (N, C, X, Y, Z), written with a loop."""
    grid = torch.zeros(x.batch_size, x.feats.shape[1], *x.shape, dtype=x.feats.dtype)
    for (b, i, j, k), f in zip(x.coords.tolist(), x.feats, strict=True):
        grid[b, :, i, j, k] = f
    return grid


@pytest.mark.parametrize(
    "options",
    [
        {"mode": "submanifold"},
        {"mode": "submanifold", "kernel_size": 5},
        {"mode": "submanifold", "dilation": 2},
        {"mode": "submanifold", "kernel_size": (3, 1, 5)},
        {"mode": "regular"},
        {"mode": "regular", "stride": 2},
        {"mode": "regular", "kernel_size": 2, "stride": 2, "padding": 0},
        {"mode": "regular", "kernel_size": 3, "stride": (2, 1, 2), "dilation": 2},
    ],
    ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()),
)
def test_equals_dense_conv3d_at_active_sites(options):
    x = _voxels()
    conv = SparseConv3d(3, 4, **options).double()
    y = conv(x)
    k = conv.kernel_size
    padding = conv.padding or tuple(d * (kk - 1) // 2 for kk, d in zip(k, conv.dilation, strict=True))
    dense = F.conv3d(_dense_grid(x), conv.weight, None, conv.stride, padding, conv.dilation)
    assert y.shape == tuple(dense.shape[2:])
    expected = torch.stack([dense[b, :, i, j, l] for b, i, j, l in y.coords.tolist()]) + conv.bias
    torch.testing.assert_close(y.feats, expected, rtol=0, atol=1e-12)
    if options["mode"] == "submanifold":
        assert torch.equal(y.coords, x.coords)
    else:  # regular: the active outputs are exactly the sites the inputs reach (the dense support of a ones-conv)
        reach = F.conv3d((_dense_grid(x)[:, :1] != 0).double(), torch.ones(1, 1, *k, dtype=torch.float64), None,
                         conv.stride, padding, conv.dilation)  # fmt: skip
        assert sorted(map(tuple, y.coords.tolist())) == sorted(
            (b, i, j, l) for b, _, i, j, l in (reach > 0).nonzero().tolist()
        )


def test_rulebook_is_built_once_per_coordinate_tensor(monkeypatch):
    x = _voxels()
    calls = []
    build = sc._submanifold
    monkeypatch.setattr(sc, "_submanifold", lambda *a: calls.append(1) or build(*a))
    first, second = SparseConv3d(3, 4).double(), SparseConv3d(4, 4).double()
    second(first(x))  # the submanifold output carries the same coords tensor
    first(x)
    assert len(calls) == 1
    x.coords[0, 1] = x.coords[0, 1]  # an in-place write bumps the version: rebuilt
    rulebook(x, (3, 3, 3))
    assert len(calls) == 2
    rulebook(x.replace(x.feats), (5, 5, 5))  # another geometry: its own rulebook
    assert len(calls) == 3


def test_gradcheck():
    x = _voxels(shape=(3, 3, 3), batch=1, channels=2, occupancy=0.4)
    for mode, stride in (("submanifold", 1), ("regular", 2)):
        conv = SparseConv3d(2, 2, stride=stride, mode=mode).double()
        feats = x.feats.clone().requires_grad_()
        torch.autograd.gradcheck(lambda f, w, b, c=conv: sc.sparse_conv3d(f, w, c.rulebook(x), b),
                                 (feats, conv.weight, conv.bias))  # fmt: skip


def test_empty_and_registered():
    empty = Voxels(torch.zeros(0, 4, dtype=torch.int64), torch.zeros(0, 3), (4, 4, 4), 1)
    assert create_op("sparse_conv3d", 3, 5, dim=3)(empty).feats.shape == (0, 5)


def test_errors():
    x = _voxels()
    with pytest.raises(ValueError, match="coords must be \\(M, 4\\) int64"):
        Voxels(x.coords.int(), x.feats, x.shape, 2)
    with pytest.raises(ValueError, match="coords must not repeat a site"):
        SparseConv3d(3, 3)(Voxels(torch.cat([x.coords[:1], x.coords[:1]]), x.feats[:2], x.shape, 2))
    with pytest.raises(ValueError, match="coords must lie in"):
        SparseConv3d(3, 3)(Voxels(x.coords + 10, x.feats, x.shape, 2))
    with pytest.raises(ValueError, match="stride must be 1"):
        SparseConv3d(3, 3, stride=2)
    with pytest.raises(ValueError, match="kernel_size \\(submanifold\\) must be an odd int"):
        SparseConv3d(3, 3, kernel_size=2)
    with pytest.raises(ValueError, match="mode must be one of"):
        SparseConv3d(3, 3, mode="dense")
    with pytest.raises(ValueError, match="expected 3 feature channels, got 4"):
        SparseConv3d(3, 3)(x.replace(torch.zeros(len(x.coords), 4)))
    with pytest.raises(TypeError, match="expected Voxels"):
        SparseConv3d(3, 3)(torch.zeros(1, 3, 4, 4, 4))


@pytest.mark.peer
@pytest.mark.parametrize("mode", ["submanifold", "regular"])
def test_peer_spconv(mode):
    spconv = pytest.importorskip("spconv.pytorch", reason="the spconv peer needs spconv (pip install convzoo[sparse])")
    x = _voxels(shape=(8, 9, 7), channels=4, dtype=torch.float32)
    ours = SparseConv3d(4, 6, stride=2 if mode == "regular" else 1, mode=mode, bias=False)
    cls = spconv.SubMConv3d if mode == "submanifold" else spconv.SparseConv3d
    theirs = cls(4, 6, 3, stride=ours.stride, padding=1, bias=False)
    with torch.no_grad():  # spconv keeps its weight as (C_out, kx, ky, kz, C_in)
        theirs.weight.copy_(ours.weight.permute(0, 2, 3, 4, 1))
    out = theirs(spconv.SparseConvTensor(x.feats, x.coords.int(), list(x.shape), x.batch_size))
    mine = ours(x)
    assert list(out.spatial_shape) == list(mine.shape)
    theirs_by_site = dict(zip(map(tuple, out.indices.long().tolist()), out.features, strict=True))
    assert set(theirs_by_site) == set(map(tuple, mine.coords.tolist()))
    expected = torch.stack([theirs_by_site[tuple(c)] for c in mine.coords.tolist()])
    torch.testing.assert_close(mine.feats, expected, rtol=1e-4, atol=1e-4)
