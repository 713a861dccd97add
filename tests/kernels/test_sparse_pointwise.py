"""Sparse 1×1 convolution (S107): the native CSR kernel (each instruction set) and the pure-PyTorch path equal a
float64 sum over the weight's nonzeros, for tile remainders, channel counts off the 16-lane grid, empty rows and
both memory layouts; errors. The native tests skip where the extension was not built, except under
``CONVZOO_REQUIRE_NATIVE=1``."""

from __future__ import annotations

import os

import pytest
import torch

from convzoo.kernels import sparse_pointwise
from convzoo.kernels.sparse_pointwise import CSRWeight, pointwise, pointwise_torch

REQUIRED = os.environ.get("CONVZOO_REQUIRE_NATIVE") == "1"
ISAS = ["native-best", "native-portable", "torch"] if sparse_pointwise.available() else ["torch"]


def test_built_when_required():
    if not REQUIRED and not sparse_pointwise.available():
        pytest.skip(f"native extension not built: {sparse_pointwise.unavailable_reason()}")
    assert sparse_pointwise.available(), sparse_pointwise.unavailable_reason()


def _reference(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Σ over the nonzeros (o, k) of W[o, k] · x[:, k], in float64, one nonzero at a time."""
    n, _, h, w = x.shape
    out = torch.zeros(n, weight.shape[0], h, w, dtype=torch.float64)
    for o, k in weight.nonzero().tolist():
        out[:, o] += weight[o, k].double() * x[:, k].double()
    return out if bias is None else out + bias.double()[:, None, None]


def _run(path: str, x, csr, bias):
    if path == "torch":
        return pointwise_torch(x, csr, bias)
    sparse_pointwise.set_isa("portable" if path == "native-portable" else _best())
    try:
        return pointwise(x, csr, bias, native=True)
    finally:
        sparse_pointwise.set_isa(_best())


def _best() -> str:
    sparse_pointwise.set_isa("portable")
    try:
        sparse_pointwise.set_isa("avx512f")
        return "avx512f"
    except RuntimeError:
        return "portable"


@pytest.mark.parametrize("path", ISAS)
@pytest.mark.parametrize(
    ("batch", "c_in", "c_out", "side", "sparsity"),
    [(1, 32, 64, 7, 0.9), (2, 20, 37, 5, 0.8), (1, 3, 5, 1, 0.5), (1, 48, 16, 9, 0.95), (3, 64, 33, 11, 0.0)],
)
def test_equals_reference(path, batch, c_in, c_out, side, sparsity):
    g = torch.Generator().manual_seed(c_in * c_out)
    weight = torch.randn(c_out, c_in, generator=g)
    weight[torch.rand(c_out, c_in, generator=g) < sparsity] = 0
    weight[0] = 0  # an empty row
    bias = torch.randn(c_out, generator=g)
    csr = CSRWeight.from_dense(weight[:, :, None, None])
    assert csr.nnz == int((weight != 0).sum())
    torch.testing.assert_close(csr.to_dense(), weight, rtol=0, atol=0)
    x = torch.randn(batch, c_in, side, side, generator=g)
    for layout in (torch.contiguous_format, torch.channels_last):
        for b in (bias, None):
            y = _run(path, x.contiguous(memory_format=layout), csr, b)
            assert y.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(y.double(), _reference(x, weight, b), rtol=1e-5, atol=1e-5)


def test_errors():
    csr = CSRWeight.from_dense(torch.ones(4, 3))
    with pytest.raises(ValueError, match="expected a 1×1 kernel"):
        CSRWeight.from_dense(torch.ones(4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"expected x \(N, 3, H, W\), got shape \(1, 2, 4, 4\)"):
        pointwise(torch.ones(1, 2, 4, 4), csr)
    with pytest.raises(TypeError, match="runs in float32, got torch.float64"):
        pointwise(torch.ones(1, 3, 4, 4, dtype=torch.float64), csr)
    if sparse_pointwise.available():
        with pytest.raises(RuntimeError, match="unknown or unsupported isa 'sse9'"):
            sparse_pointwise.set_isa("sse9")
