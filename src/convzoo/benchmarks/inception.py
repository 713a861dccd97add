"""Suite ``inception``: InceptionNeXt's Inception depthwise conv against the 7×7 depthwise conv it replaces (S40)."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from convzoo.benchmarks._shapes import CONVNEXT_T, QUICK, feature_map
from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["inception_cases"]


def _pair(channels: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    inception = create_op("inception_dw", channels, channels, 3)  # band 11, branch ratio 1/8 (paper defaults)
    depthwise = create_op("conv", channels, channels, 7, groups=channels)  # ConvNeXt's token mixer
    return inception, depthwise, feature_map(batch, channels, side)


@SUITES.register(
    "inception",
    kind="suite",
    papers=("inceptionnext",),
    summary="inception_dw vs 7×7 depthwise conv at ConvNeXt-T widths, all four stages (batch 8)",
)
def inception_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """One case per ConvNeXt-T stage: InceptionNeXt's mixer (A) against ConvNeXt's 7×7 depthwise conv (B)."""
    batch = batch or (2 if quick else 8)
    shapes = [*QUICK, (64, 2), (128, 1)] if quick else CONVNEXT_T
    return [
        Case(
            name=f"stage {stage} {batch}x{channels}x{side}x{side}",
            a="inception_dw (3, 11, 1/8)",
            b="depthwise 7×7",
            build=partial(_pair, channels, side, batch),
        )
        for stage, (channels, side) in enumerate(shapes, start=1)
    ]
