"""Suite ``largekernel``: the large depthwise kernel path against PyTorch's own depthwise conv, k = 3 … 51."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from convzoo.benchmarks._shapes import feature_map
from convzoo.kernels.large_kernel import large_kernel_module
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["KERNELS", "largekernel_cases"]

KERNELS = tuple(range(3, 52, 2))  # every odd k from 3 to 51
QUICK_KERNELS = (3, 15, 31)
SHAPE = (96, 56)  # ConvNeXt-T / RepLKNet stage-1 shape: 96 channels at 56×56
QUICK_SHAPE = (8, 12)


def _pair(channels: int, side: int, kernel: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    direct = nn.Conv2d(channels, channels, kernel, padding=kernel // 2, groups=channels)
    return large_kernel_module(direct), direct, feature_map(batch, channels, side)


@SUITES.register(
    "largekernel",
    kind="suite",
    papers=("unireplknet", "shiftwise", "parcnetv2", "lsnet"),
    summary="large depthwise kernel path vs F.conv2d depthwise, k = 3..51 at 96 channels, 56², batch 8",
)
def largekernel_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """One case per odd k: :func:`large_kernel_module` of the conv (A) against ``nn.Conv2d`` (B), same weights."""
    batch = batch or (1 if quick else 8)
    channels, side = QUICK_SHAPE if quick else SHAPE
    return [
        Case(
            name=f"k{kernel} {batch}x{channels}x{side}x{side}",
            a="large-kernel path",
            b="F.conv2d depthwise",
            build=partial(_pair, channels, side, kernel, batch),
            same_output=True,
        )
        for kernel in (QUICK_KERNELS if quick else KERNELS)
    ]
