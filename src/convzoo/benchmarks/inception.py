"""Suite ``inception``: InceptionNeXt's Inception depthwise conv against the 7×7 depthwise conv it replaces (S40)."""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from convzoo.benchmarks._shapes import CONVNEXT_T, QUICK, feature_map
from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["inception_cases"]


def _pair(channels: int, side: int, batch: int, layout: str = "nchw") -> tuple[nn.Module, nn.Module, Tensor]:
    inception = create_op("inception_dw", channels, channels, 3)  # band 11, branch ratio 1/8 (paper defaults)
    depthwise = create_op("conv", channels, channels, 7, groups=channels)  # ConvNeXt's token mixer
    x = feature_map(batch, channels, side)
    if layout == "channels_last":  # on x86 the depthwise kernels differ by layout: both are timed
        inception, depthwise = (m.to(memory_format=torch.channels_last) for m in (inception, depthwise))
        x = x.contiguous(memory_format=torch.channels_last)
    return inception, depthwise, x


@SUITES.register(
    "inception",
    kind="suite",
    papers=("inceptionnext",),
    summary="inception_dw vs 7×7 depthwise conv at ConvNeXt-T widths, four stages, NCHW and channels-last (batch 8)",
)
def inception_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """Per ConvNeXt-T stage and memory layout (NCHW, channels-last): InceptionNeXt's mixer (A) against ConvNeXt's 7×7
    depthwise conv (B). Each op's best layout is the faster of its two rows."""
    batch = batch or (2 if quick else 8)
    shapes = [*QUICK, (64, 2), (128, 1)] if quick else CONVNEXT_T
    return [
        Case(
            name=f"stage {stage} {batch}x{channels}x{side}x{side} {layout}",
            a="inception_dw (3, 11, 1/8)",
            b="depthwise 7×7",
            build=partial(_pair, channels, side, batch, layout),
        )
        for stage, (channels, side) in enumerate(shapes, start=1)
        for layout in ("nchw", "channels_last")
    ]
