"""The native gather-multiply-accumulate of the sparse 3-D convolution (``convzoo._sparse3d_native``, C++), when the
package build compiled it (S43, inference).

``gather_conv(feats (M_in, C_in), table (M_out, T), weight (T, C_in, C_out), bias)`` → ``(M_out, C_out)``:
``out[m] = bias + Σ_t feats[table[m, t]] @ weight[t]`` over the taps whose ``table`` entry is below ``M_in`` (the
rulebook's neighbour table). Each output row accumulates in registers, so nothing of size ``M_out · T · C_in`` is
written (the PyTorch paths gather pairs or neighbourhoods first). AVX-512F where the CPU has it, a portable build
of the same loop elsewhere (:func:`isa`); rows are shared among torch's intra-op threads. No autograd:
:func:`convzoo.ops.sparse_conv3d.sparse_conv3d` calls it only when no gradient is asked for.
"""

from __future__ import annotations

from torch import Tensor

from convzoo.kernels._native import NativeExtension

__all__ = ["available", "unavailable_reason", "isa", "set_isa", "gather_conv"]

_EXTENSION = NativeExtension("convzoo._sparse3d_native", "sparse conv3d native")
available = _EXTENSION.available
unavailable_reason = _EXTENSION.unavailable_reason
isa = _EXTENSION.isa
set_isa = _EXTENSION.set_isa
_require = _EXTENSION.require


def gather_conv(feats: Tensor, table: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """See the module docstring; every tensor float32 (``table`` int64) and contiguous."""
    return _require().gather_conv(feats, table, weight, bias)
