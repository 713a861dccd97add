"""The native gather-multiply-accumulate of the sparse 3-D convolution (C++, each instruction set) and the two
PyTorch paths (pairs, neighbourhood GEMM) equal dense ``conv3d`` read at the active sites, for channel counts off
the register blocks, with and without bias; autograd never takes the native path. Skipped where the extension was
not built, except under ``CONVZOO_REQUIRE_NATIVE=1``."""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from convzoo.kernels import sparse_conv3d_native
from convzoo.ops import sparse_conv3d as sc
from convzoo.ops.sparse_conv3d import Voxels, rulebook, sparse_conv3d

REQUIRED = os.environ.get("CONVZOO_REQUIRE_NATIVE") == "1"
PATHS = ["pairs", "gemm"] + (["native-best", "native-portable"] if sparse_conv3d_native.available() else [])


def test_built_when_required():
    if not REQUIRED and not sparse_conv3d_native.available():
        pytest.skip(f"native extension not built: {sparse_conv3d_native.unavailable_reason()}")
    assert sparse_conv3d_native.available(), sparse_conv3d_native.unavailable_reason()


def _reference(x: Voxels, weight, bias, coords):
    grid = torch.zeros(x.batch_size, x.feats.shape[1], *x.shape, dtype=torch.float64)
    for (b, i, j, k), f in zip(x.coords.tolist(), x.feats.double(), strict=True):
        grid[b, :, i, j, k] = f
    dense = F.conv3d(grid, weight.double(), None if bias is None else bias.double(), 1, 1)
    return torch.stack([dense[b, :, i, j, k] for b, i, j, k in coords.tolist()])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(("c_in", "c_out", "occupancy"), [(5, 3, 0.1), (8, 37, 0.6), (32, 64, 0.3), (3, 80, 0.05)])
def test_paths_equal_dense_conv3d(path, c_in, c_out, occupancy, monkeypatch):
    g = torch.Generator().manual_seed(c_in + c_out)
    coords = (torch.rand(2, 6, 7, 5, generator=g) < occupancy).nonzero()
    x = Voxels(coords, torch.randn(len(coords), c_in, generator=g), (6, 7, 5), 2)
    weight = torch.randn(c_out, c_in, 3, 3, 3, generator=g)
    if not path.startswith("native"):
        monkeypatch.setattr(sparse_conv3d_native, "available", lambda: False)
        monkeypatch.setattr(sc, "DENSE_TABLE", 0.0 if path == "gemm" else 2.0)
    else:
        sparse_conv3d_native.set_isa("portable")
        if path == "native-best":
            sparse_conv3d_native.set_isa("portable")
            try:
                sparse_conv3d_native.set_isa("avx512f")
            except RuntimeError:
                pytest.skip("no AVX-512F on this CPU")
    book = rulebook(x, (3, 3, 3))
    try:
        for bias in (torch.randn(c_out, generator=g), None):
            with torch.no_grad():
                out = sparse_conv3d(x.feats, weight, book, bias)
            torch.testing.assert_close(out.double(), _reference(x, weight, bias, book.coords), rtol=1e-4, atol=1e-4)
    finally:
        if sparse_conv3d_native.available():
            try:
                sparse_conv3d_native.set_isa("avx512f")
            except RuntimeError:
                sparse_conv3d_native.set_isa("portable")


def test_autograd_takes_a_pytorch_path():
    coords = (torch.rand(1, 4, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.5).nonzero()
    x = Voxels(coords, torch.randn(len(coords), 4, requires_grad=True), (4, 4, 4), 1)
    weight = torch.randn(4, 4, 3, 3, 3, requires_grad=True)
    out = sparse_conv3d(x.feats, weight, rulebook(x, (3, 3, 3)))
    assert out.grad_fn is not None
    out.sum().backward()
    assert x.feats.grad is not None and weight.grad is not None
