"""Suite ``binary``: packed XNOR conv (pure PyTorch, "packed-torch") against the fp32 3×3 conv (S8 XNOR-Net).

The packed path runs the integer XOR/popcount math of S8 with PyTorch tensor ops (one pass per kernel tap,
SWAR popcount on int64 words); without a native kernel it is expected to be slower than the fp32 conv, whose
oneDNN/MKL kernel is heavily optimised. The suite measures how far it is, and is the baseline a native
``packed_conv`` must beat.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from convzoo.benchmarks._shapes import QUICK, RESNET18, feature_map
from convzoo.ops.base import create_op
from convzoo.ops.binary_packed import PackedBinaryConv
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["binary_cases"]


def _pair(channels: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    binary = create_op("binary", channels, channels, 3, bias=False, mode="xnor")
    packed = PackedBinaryConv.from_binary(binary)
    dense = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
    return packed, dense, feature_map(batch, channels, side)


@SUITES.register(
    "binary",
    kind="suite",
    papers=("xnor-net",),
    summary="packed XNOR 3×3 conv (pure PyTorch) vs fp32 3×3 conv at ResNet-18 stage shapes, batch 1 and 8",
)
def binary_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """One case per ResNet-18 stage shape and batch (1 and 8; 1 in quick mode): packed XNOR (A) vs fp32 (B)."""
    batches = (batch,) if batch else ((1,) if quick else (1, 8))
    shapes = QUICK if quick else RESNET18
    return [
        Case(
            name=f"{n}x{channels}x{side}x{side}",
            a="packed XNOR 3×3",
            b="fp32 3×3 conv",
            build=partial(_pair, channels, side, n),
        )
        for n in batches
        for channels, side in shapes
    ]
