"""Suite ``reparam``: UniRepLKNet's Dilated Reparam Block merged (deploy form) against its training form (S12)."""

from __future__ import annotations

from functools import partial

from torch import Tensor, nn

from convzoo.benchmarks._shapes import QUICK, UNIREPLKNET_T_LARGE_KERNEL, feature_map
from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["reparam_cases"]

KERNEL = 13  # UniRepLKNet's large kernel


def _pair(channels: int, side: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    training = create_op("dilated_reparam", channels, channels, KERNEL).eval()
    return training.merge(), training, feature_map(batch, channels, side)


@SUITES.register(
    "reparam",
    kind="suite",
    papers=("unireplknet",),
    summary="dilated_reparam merged 13×13 depthwise conv vs its training form, UniRepLKNet-T stages 2-4 (batch 8)",
)
def reparam_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """One case per large-kernel stage: the merged conv (A) against the multi-branch form with BNs (B), eval mode.

    The harness checks that both compute the same function before timing them.
    """
    batch = batch or (2 if quick else 8)
    shapes = QUICK if quick else UNIREPLKNET_T_LARGE_KERNEL
    return [
        Case(
            name=f"{batch}x{channels}x{side}x{side}",
            a=f"merged {KERNEL}×{KERNEL} dw",
            b="training form (13 + 5 dilated branches, BN)",
            build=partial(_pair, channels, side, batch),
            same_output=True,
        )
        for channels, side in shapes
    ]
