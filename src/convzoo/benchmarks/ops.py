"""Suite ``ops``: every registered grid operator against a plain 3×3 conv and a 3×3 depthwise-separable conv."""

from __future__ import annotations

import functools
import inspect

from torch import Tensor, nn

from convzoo.benchmarks._shapes import CONVNEXT_T, QUICK, RESNET18, feature_map
from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import OPS, SUITES

__all__ = ["ops_cases"]

BASELINES = ("conv", "dwsep")


@functools.cache
def kernel_for(name: str, channels: int, preferred: int = 3) -> int:
    """``preferred`` when the op takes it at ``channels``, else the op's own default kernel (dilated_reparam: 13)."""
    try:
        create_op(name, channels, channels, preferred)
        return preferred
    except (ValueError, TypeError):
        default = inspect.signature(OPS.get(name).obj.__init__).parameters["kernel_size"].default
        return default if isinstance(default, int) else preferred


def _pair(op: str, baseline: str, channels: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    module = create_op(op, channels, channels, kernel_for(op, channels))
    return module, create_op(baseline, channels, channels, 3), feature_map(batch, channels, side)


@SUITES.register(
    "ops",
    kind="suite",
    papers=("conv-efficiency",),
    summary="every grid op vs 3×3 conv and vs 3×3 dwsep at ResNet-18 and ConvNeXt-T stage shapes (batch 1)",
)
def ops_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """One case per (stage shape, grid op, baseline): C → C channels, stride 1, kernel 3 where the op takes it."""
    batch = batch or 1
    shapes = [("quick", c, s) for c, s in QUICK] if quick else []
    if not quick:
        shapes = [("resnet18", c, s) for c, s in RESNET18] + [("convnext_t", c, s) for c, s in CONVNEXT_T]
    names = [e.name for e in OPS.entries() if e.kind == "grid" and 2 in e.dims]
    cases = []
    for family, channels, side in shapes:
        for op in names:
            for baseline in BASELINES:
                if op == baseline:
                    continue
                label = f"{op} k{kernel_for(op, channels)}"
                cases.append(
                    Case(
                        name=f"{family} {batch}x{channels}x{side}x{side}",
                        a=label,
                        b=f"{baseline} k3",
                        build=functools.partial(_pair, op, baseline, channels, side, batch),
                    )
                )
    return cases
