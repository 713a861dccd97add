"""Suite ``dynamic``: involution shifted views vs its unfold form (S106); dcls vs the ``dcls`` package (S17).

Involution runs at RedNet-50's involution placements (the 3×3 position of every bottleneck, 7×7 involution,
widths 64/128/256/512 at 56/28/14/7), both sides the same module with the same weights, aggregating either
through K² shifted views or through the materialised unfold patches of the official code. DCLS runs at
ConvNeXt-T's stage-1 depthwise shape (96 channels, 56², 34 taps in a 17×17 dilated kernel, the paper's
ConvNeXt-dcls setting) against the official package's ``Dcls2d`` given the same weights and positions, with
bilinear and with Gaussian interpolation; those cases are skipped with the reason when the package is absent.
"""

from __future__ import annotations

import logging
from functools import partial

import torch
from torch import Tensor, nn

from convzoo.benchmarks._shapes import QUICK, feature_map
from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["dynamic_cases", "REDNET50_INVOLUTION"]

# RedNet-50 (S106): an involution replaces the 3×3 conv of each bottleneck; its width per stage at 224×224 input.
REDNET50_INVOLUTION = ((64, 56), (128, 28), (256, 14), (512, 7))
INVOLUTION_KERNEL = 7  # RedNet's involution kernel size
# ConvNeXt-T stage 1 with DCLS (S17): 96 channels at 56², kernel_count 34 in a 17×17 dilated kernel.
DCLS_SHAPE, DCLS_QUICK = (96, 56, 17, 34), (16, 8, 5, 4)
PACKAGE_VERSIONS = {"bilinear": "v1", "gaussian": "gauss"}  # convzoo interpolation → the package's ``version``


def _involution_pair(channels: int, side: int, batch: int, kernel: int) -> tuple[nn.Module, nn.Module, Tensor]:
    shifted = create_op("involution", channels, channels, kernel)
    unfold = create_op("involution", channels, channels, kernel, aggregation="unfold")
    unfold.load_state_dict(shifted.state_dict())
    return shifted, unfold, feature_map(batch, channels, side)


def package_dcls(op: nn.Module) -> nn.Module:
    """The official package's ``Dcls2d`` holding ``op``'s weights, positions and widths (square kernels only).

    Raises ``RuntimeError`` when the ``dcls`` package is not installed. The package pairs its first position
    row with the last kernel axis, so the rows are swapped when copied.
    """
    try:
        from DCLS.construct.modules import Dcls2d
    except ImportError as error:
        raise RuntimeError("the dcls package is not installed (pip install dcls)") from error
    size = op.kernel_size
    if op.dim != 2 or size[0] != size[1]:
        raise ValueError(f"package_dcls: needs a 2-d op with a square kernel, got kernel_size {size} in {op.dim}-d")
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # the package logs which conv backend it picked on construction
    try:
        package = Dcls2d(
            op.in_channels,
            op.out_channels,
            op.kernel_count,
            stride=op.stride,
            padding=size[0] // 2,
            dilated_kernel_size=size,
            groups=op.groups,
            bias=op.bias is not None,
            version=PACKAGE_VERSIONS[op.interpolation],
            use_implicit_gemm=False,
        )
    finally:
        logging.disable(previous)
    with torch.no_grad():
        package.weight.copy_(op.weight)
        package.P.copy_(op.positions.flip(0))
        if op.bias is not None:
            package.bias.copy_(op.bias)
        if op.sigma is not None:
            package.SIG.copy_(op.sigma.flip(0))
    return package


def _dcls_pair(
    channels: int, side: int, kernel: int, count: int, interpolation: str, batch: int
) -> tuple[nn.Module, nn.Module, Tensor]:
    ours = create_op(
        "dcls", channels, channels, kernel, kernel_count=count, groups=channels, interpolation=interpolation
    )
    return ours, package_dcls(ours), feature_map(batch, channels, side)


@SUITES.register(
    "dynamic",
    kind="suite",
    papers=("involution", "dcls"),
    summary="involution shifted views vs unfold (RedNet-50 shapes); dcls vs the dcls package (ConvNeXt-T stage 1)",
)
def dynamic_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """Involution (A: shifted views) vs the unfold form (B) per RedNet-50 stage, then dcls (A) vs ``Dcls2d`` (B).

    Every pair computes the same function; the harness checks it before timing.
    """
    batch = batch or 1
    inv_kernel = 3 if quick else INVOLUTION_KERNEL
    cases = [
        Case(
            name=f"involution {batch}x{channels}x{side}x{side} k{inv_kernel}",
            a="involution shifted",
            b="involution unfold",
            build=partial(_involution_pair, channels, side, batch, inv_kernel),
            same_output=True,
        )
        for channels, side in (QUICK if quick else REDNET50_INVOLUTION)
    ]
    channels, side, kernel, count = DCLS_QUICK if quick else DCLS_SHAPE
    for interpolation in PACKAGE_VERSIONS:
        cases.append(
            Case(
                name=f"dcls {interpolation} {batch}x{channels}x{side}x{side} k{kernel} taps{count}",
                a="convzoo dcls",
                b="dcls package",
                build=partial(_dcls_pair, channels, side, kernel, count, interpolation, batch),
                same_output=True,
            )
        )
    return cases
