"""Suite ``semiring``: the (max, +) semiring convolution (S47) against scipy's grey dilation, which it equals.

Grey-scale dilation of a 512² single-channel image by a 3×3 structuring element: convzoo's semiring op (one
``(max, +)`` pass per kernel offset) against ``scipy.ndimage.grey_dilation`` with the same non-flat element
(``structure=``) and with a flat one (``size=``, which scipy runs as separable running maxima); and 64
channels, each with its own element, as one depthwise semiring conv against 64 scipy calls. The harness
checks the outputs agree before timing. Measure at one thread (``--threads 1``): scipy's filters use one.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import Tensor, nn

from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["semiring_cases"]


class _ScipyDilation(nn.Module):
    """``scipy.ndimage.grey_dilation`` of every channel of ``(1, C, H, W)`` with its element (cross-correlation weights
    flipped into scipy's structuring element); ``flat`` uses ``size=`` instead of ``structure=``."""

    def __init__(self, weight: Tensor, flat: bool) -> None:
        super().__init__()
        self.structures = [np.ascontiguousarray(w[0].numpy()[::-1, ::-1]) for w in weight.detach()]
        self.flat = flat

    def forward(self, x: Tensor) -> Tensor:
        from scipy import ndimage

        out = np.empty(tuple(x.shape), dtype=np.float32)
        image = x.numpy()
        for c, structure in enumerate(self.structures):
            if self.flat:
                ndimage.grey_dilation(
                    image[0, c], size=structure.shape, mode="constant", cval=-np.inf, output=out[0, c]
                )
            else:
                ndimage.grey_dilation(image[0, c], structure=structure, mode="constant", cval=-np.inf, output=out[0, c])
        return torch.from_numpy(out)


def _pair(channels: int, side: int, flat: bool) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    op = create_op("semiring", channels, channels, 3, semiring="max_plus", groups=channels, bias=False)
    if flat:
        with torch.no_grad():
            op.weight.zero_()
    x = torch.rand(1, channels, side, side, generator=torch.Generator().manual_seed(0))
    return op, _ScipyDilation(op.weight, flat), x


@SUITES.register(
    "semiring",
    kind="suite",
    papers=("semiring-conv",),
    summary="(max,+) semiring conv vs scipy grey_dilation, 3×3 element, 512² image, 1 and 64 channels",
)
def semiring_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """One channel (non-flat and flat element) and 64 channels (one element each) at 512² (quick: 8 at 64²)."""
    side = 64 if quick else 512
    many = batch or (8 if quick else 64)
    shapes = [(1, False, "non-flat"), (1, True, "flat"), (many, False, "non-flat")]
    return [
        Case(
            name=f"max-plus 3x3 {label} 1x{channels}x{side}x{side}",
            a="semiring (max,+)",
            b=f"scipy grey_dilation x{channels}",
            build=partial(_pair, channels, side, flat),
            same_output=True,
        )
        for channels, flat, label in shapes
    ]
