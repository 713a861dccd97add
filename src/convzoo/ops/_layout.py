"""Memory layout helpers for operators: a channels-last input gives a channels-last output, a contiguous one a
contiguous output.

Element-wise ops, convolutions, ``F.pad``, ``clone`` and ``empty_like`` keep their input's layout; reductions,
``index_select``, ``gather``, ``reshape`` copies, ``torch.cat``/``torch.stack`` of strided views and the FFTs write
contiguous tensors. Where an operator needs one of the latter, these helpers write the result in the input's
layout in the same single copy.

>>> x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)
>>> memory_format(x), memory_format(x.contiguous())
(torch.channels_last, torch.contiguous_format)
>>> take_channels(x, torch.tensor([0, 3])).is_contiguous(memory_format=torch.channels_last)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["memory_format", "is_channels_last", "empty", "take_channels", "concat", "subsample"]

_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


def memory_format(x: Tensor) -> torch.memory_format:
    """``torch.channels_last`` (4-d) or ``torch.channels_last_3d`` (5-d) when ``x`` is stored channels-last, else
    ``torch.contiguous_format``. A tensor with one channel or one pixel is both; as in PyTorch's own choice of
    layout, one channel counts as channels-last where its channel stride is 1 (it was written channels-last),
    one pixel as contiguous."""
    fmt = _CHANNELS_LAST.get(x.dim())
    if fmt is None or not x.is_contiguous(memory_format=fmt):
        return torch.contiguous_format
    if not x.is_contiguous() or (x.stride(1) == 1 and math.prod(x.shape[2:]) > 1):
        return fmt
    return torch.contiguous_format


def is_channels_last(x: Tensor) -> bool:
    return memory_format(x) is not torch.contiguous_format


def empty(shape: Sequence[int], like: Tensor) -> Tensor:
    """An uninitialised tensor of ``shape`` with ``like``'s dtype, device and memory format."""
    return torch.empty(tuple(shape), dtype=like.dtype, device=like.device, memory_format=memory_format(like))


def take_channels(x: Tensor, index: Tensor) -> Tensor:
    """``x.index_select(1, index)``: ``(N, C, *S) → (N, len(index), *S)``, in ``x``'s memory format."""
    if is_channels_last(x):
        return x.movedim(1, -1).index_select(-1, index).movedim(-1, 1)  # gathered as (N, *S, C'), viewed back
    return x.index_select(1, index)


def concat(pieces: Sequence[Tensor], dim: int, like: Tensor) -> Tensor:
    """``torch.cat(pieces, dim)`` written into a tensor in ``like``'s memory format (``torch.cat`` of strided views,
    such as channel slices of a channels-last tensor, writes a contiguous one). Differentiable."""
    shape = list(pieces[0].shape)
    shape[dim] = sum(p.shape[dim] for p in pieces)
    out = empty(shape, like)
    start = 0
    for piece in pieces:
        out.narrow(dim, start, piece.shape[dim]).copy_(piece)
        start += piece.shape[dim]
    return out


def subsample(x: Tensor, stride: Sequence[int]) -> Tensor:
    """``x[..., ::s_1, ..., ::s_d]`` as a dense tensor in ``x``'s memory format: one copy of the kept pixels,
    ``(N, C, *S) → (N, C, *ceil(S / stride))``. No copy (``x`` or a view of it) where the kept pixels are already
    dense in that format: every stride 1, or every size at most its stride."""
    if all(s == 1 for s in stride):
        return x
    kept = x[(..., *(slice(None, None, s) for s in stride))]  # strided view
    return kept.contiguous(memory_format=memory_format(x))
