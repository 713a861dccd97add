"""Tiled SR inference (IMDN's adaptive cropping strategy, S31): upscale overlapping tiles, keep each tile's centre.

Each output tile is computed from its input tile grown by ``overlap`` pixels on every side (clipped at the image
border) and cropped back. For a model whose output pixel depends only on input pixels within ``overlap`` (its
receptive-field radius, in LR pixels) the result equals the whole-image upscale exactly, while the activations held
at once are those of one tile. Models with image-wide statistics (IMDN's contrast-aware attention, A2N's pooled
branch weights) see a tile's statistics instead, so there the tiled output is close, not equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int

__all__ = ["tile_count", "tiled_upscale"]


def tile_count(height: int, width: int, tile: int) -> int:
    """How many tiles :func:`tiled_upscale` runs on an ``height`` × ``width`` input."""
    return math.ceil(height / tile) * math.ceil(width / tile)


@torch.no_grad()
def tiled_upscale(
    model: nn.Module,
    x: Tensor,
    *,
    tile: int = 64,
    overlap: int = 16,
    on_tile: Callable[[], None] | None = None,
) -> Tensor:
    """``model(x)`` for (N, C, H, W) ``x`` computed tile by tile: tiles ``tile``² LR pixels, ``overlap`` of context.

    ``on_tile()`` is called after each tile (a progress bar's update).
    """
    check_int(tile, "tile", "tiled_upscale")
    check_int(overlap, "overlap", "tiled_upscale", low=0)
    scale = model.scale
    n, _, h, w = x.shape
    out: Tensor | None = None
    for top in range(0, h, tile):
        for left in range(0, w, tile):
            bottom, right = min(top + tile, h), min(left + tile, w)
            t0, l0 = max(top - overlap, 0), max(left - overlap, 0)
            t1, l1 = min(bottom + overlap, h), min(right + overlap, w)
            piece = model(x[:, :, t0:t1, l0:l1])  # (N, C', s·(t1 − t0), s·(l1 − l0))
            if out is None:
                out = piece.new_empty(n, piece.shape[1], h * scale, w * scale)
            rows = slice((top - t0) * scale, (bottom - t0) * scale)
            cols = slice((left - l0) * scale, (right - l0) * scale)
            out[:, :, top * scale : bottom * scale, left * scale : right * scale] = piece[:, :, rows, cols]
            if on_tile is not None:
                on_tile()
    assert out is not None
    return out
