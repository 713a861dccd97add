"""Sparse 1×1 (pointwise) convolution for inference (S107, Elsen et al., "Fast Sparse ConvNets").

``y[n, o, h, w] = b[o] + Σ_k W[o, k] · x[n, k, h, w]`` with the weight ``W (C_out, C_in)`` held in CSR form
(:class:`CSRWeight`: only its nonzeros) and the activations in channels-last memory, so the work is
``N·H·W · nnz`` multiply-adds instead of ``N·H·W · C_out · C_in``.

Two paths that give the same numbers (to float rounding):

- native (``convzoo._sparse_native``, C++, built by ``setup.py`` like the binary kernel and optional:
  :func:`available` / :func:`unavailable_reason`): per tile of 16–64 pixels the input tile is transposed to
  ``(C_in, T)``, each output channel accumulates its nonzeros as ``value × (T pixels of one input channel)`` in
  16-lane vectors (the paper's inner loop, which vectorises over pixels), and the tile is transposed back.
  AVX-512F where the CPU has it (:func:`isa`), a portable build of the same loop elsewhere; tiles are shared
  among torch's intra-op threads;
- pure PyTorch: ``torch.sparse`` CSR × dense matrix product on ``(C_in, P)`` (always there).

Departure from the paper: it reads CHW (channels-first) activations; convzoo's deploy forms run channels-last,
so the native kernel transposes per tile in cache instead. Only stride-1 unstructured CSR is provided (the
paper's block variants are not).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from convzoo.kernels._native import NativeExtension

__all__ = ["CSRWeight", "available", "unavailable_reason", "isa", "set_isa", "pointwise", "pointwise_torch"]

_EXTENSION = NativeExtension("convzoo._sparse_native", "sparse pointwise")
available = _EXTENSION.available
unavailable_reason = _EXTENSION.unavailable_reason
isa = _EXTENSION.isa
set_isa = _EXTENSION.set_isa
_require = _EXTENSION.require


@dataclass(frozen=True)
class CSRWeight:
    """A ``(C_out, C_in)`` weight by its nonzeros: ``row_ptr (C_out + 1,)`` int64, ``cols (nnz,)`` int32,
    ``values (nnz,)`` float32 (row ``o`` holds ``cols/values[row_ptr[o]:row_ptr[o + 1]]``)."""

    row_ptr: Tensor
    cols: Tensor
    values: Tensor
    in_channels: int

    @classmethod
    def from_dense(cls, weight: Tensor) -> CSRWeight:
        """From a dense ``(C_out, C_in)`` or ``(C_out, C_in, 1, 1)`` weight; exact zeros are dropped."""
        if weight.dim() == 4:
            if weight.shape[2:] != (1, 1):
                raise ValueError(f"sparse pointwise: expected a 1×1 kernel, got weight shape {tuple(weight.shape)}")
            weight = weight.flatten(1)  # (C_out, C_in)
        if weight.dim() != 2:
            raise ValueError(f"sparse pointwise: expected a (C_out, C_in) weight, got shape {tuple(weight.shape)}")
        weight = weight.detach().float()
        rows, cols = weight.nonzero(as_tuple=True)  # row-major order: CSR order
        counts = torch.bincount(rows, minlength=weight.shape[0])
        row_ptr = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
        return cls(row_ptr, cols.to(torch.int32).contiguous(), weight[rows, cols].contiguous(), weight.shape[1])

    @property
    def out_channels(self) -> int:
        return self.row_ptr.numel() - 1

    @property
    def nnz(self) -> int:
        return self.values.numel()

    def to_dense(self) -> Tensor:
        """The ``(C_out, C_in)`` weight."""
        dense = torch.zeros(self.out_channels, self.in_channels)
        rows = torch.repeat_interleave(torch.arange(self.out_channels), self.row_ptr.diff())
        dense[rows, self.cols.long()] = self.values
        return dense

    def to_torch(self) -> Tensor:
        """The weight as a ``torch.sparse_csr`` tensor (for the pure-PyTorch path)."""
        with warnings.catch_warnings():  # torch marks its CSR layout "beta" on first use
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            return torch.sparse_csr_tensor(
                self.row_ptr,
                self.cols.to(torch.int64),
                self.values,
                (self.out_channels, self.in_channels),
                check_invariants=False,
            )


def _rows(x: Tensor, weight: CSRWeight) -> Tensor:
    """``x (N, C_in, H, W)`` → its pixel rows ``(N·H·W, C_in)`` (no copy when x is channels-last float32)."""
    if x.dim() != 4 or x.shape[1] != weight.in_channels:
        raise ValueError(f"sparse pointwise: expected x (N, {weight.in_channels}, H, W), got shape {tuple(x.shape)}")
    if x.dtype != torch.float32:
        raise TypeError(f"sparse pointwise: runs in float32, got {x.dtype}")
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # (N·H·W, C_in)


def pointwise(x: Tensor, weight: CSRWeight, bias: Tensor | None = None, *, native: bool | None = None) -> Tensor:
    """``x (N, C_in, H, W)`` float32 → ``(N, C_out, H, W)`` in channels-last memory.

    ``native``: ``None`` runs the native kernel when it is built, ``True`` requires it, ``False`` runs
    :func:`pointwise_torch`.
    """
    if native is False or (native is None and not _EXTENSION.available()):
        return pointwise_torch(x, weight, bias)
    rows = _rows(x, weight).contiguous()
    out = _require().pointwise(rows, weight.row_ptr, weight.cols, weight.values, None if bias is None else bias.float())
    n, _, h, w = x.shape
    return out.view(n, h, w, -1).permute(0, 3, 1, 2)  # (N, C_out, H, W), channels-last memory


def pointwise_torch(x: Tensor, weight: CSRWeight, bias: Tensor | None = None) -> Tensor:
    """The pure-PyTorch path of :func:`pointwise`: ``torch.sparse`` CSR × dense."""
    rows = _rows(x, weight)
    out = (weight.to_torch() @ rows.t()).t()  # (N·H·W, C_out), a transposed view of (C_out, N·H·W)
    if bias is not None:
        out = out + bias
    n, _, h, w = x.shape
    return out.reshape(n, h, w, -1).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
