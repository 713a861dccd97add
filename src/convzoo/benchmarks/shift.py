"""Suite ``shift``: spatial shift + 1×1 conv against 3×3 depthwise + 1×1 conv (S2 SCNet, S7 TCSR)."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from convzoo.benchmarks._shapes import QUICK, RESNET18, feature_map
from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["shift_cases"]


def _pair(channels: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    shift = create_op("shift", channels, channels, 3)  # zero-MAC spatial mixing, then the 1×1 conv
    separable = create_op("dwsep", channels, channels, 3)  # 3×3 depthwise, then the 1×1 conv
    return shift, separable, feature_map(batch, channels, side)


@SUITES.register(
    "shift",
    kind="suite",
    papers=("scnet-sr", "tcsr"),
    summary="shift + 1×1 vs 3×3 depthwise + 1×1 at ResNet-18 stage shapes (batch 1)",
)
def shift_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """One case per ResNet-18 stage shape: ``shift`` (A) against ``dwsep`` (B), C → C channels."""
    batch = batch or 1
    shapes = QUICK if quick else RESNET18
    return [
        Case(
            name=f"{batch}x{channels}x{side}x{side}",
            a="shift + 1×1",
            b="3×3 dw + 1×1",
            build=partial(_pair, channels, side, batch),
        )
        for channels, side in shapes
    ]
