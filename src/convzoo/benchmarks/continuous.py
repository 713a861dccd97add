"""Suite ``ckconv_fft``: the FFT path of continuous-kernel convolutions against the direct path (S117, S27).

Both sides are the same separable CKConv (the CCNN's layer: depthwise continuous kernel + 1×1 mixer) with
``fft=True`` (A) and ``fft=False`` (B); they compute the same function, which the harness checks before timing.
The kernel spans the input (CCNN's "same"-size kernels), so the direct path costs O(L·k) per channel and the FFT
path O(L log L): the ratio shows where the automatic choice (FFT when every kernel side exceeds 50) pays off.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn

from convzoo.ops.base import create_op
from convzoo.profile.bench import Case
from convzoo.registry import SUITES

__all__ = ["ckconv_fft_cases"]

CHANNELS = 32
# (dim, spatial side, kernel side): 1-D sequences with a kernel as long as the input (sMNIST is 784 long), a
# 4096-long sequence under growing kernels (around the FFT threshold of 50), and 2-D CIFAR-size maps with the
# CCNN's 33×33 kernels. (Speech Commands' 16000-long raw audio takes ~11 s per direct call on one core.)
FULL = ((1, 1024, 1025), (1, 4096, 4097), (1, 4096, 33), (1, 4096, 129), (2, 32, 33), (2, 64, 65))
QUICK = ((1, 64, 65), (2, 8, 9))


def _pair(dim: int, side: int, kernel: int, batch: int) -> tuple[nn.Module, nn.Module, Tensor]:
    torch.manual_seed(0)
    fft = create_op("ckconv", CHANNELS, CHANNELS, kernel, dim=dim, separable=True, fft=True)
    direct = create_op("ckconv", CHANNELS, CHANNELS, kernel, dim=dim, separable=True, fft=False)
    direct.load_state_dict(fft.state_dict())
    x = torch.randn(batch, CHANNELS, *(side,) * dim, generator=torch.Generator().manual_seed(0))
    return fft, direct, x


@SUITES.register(
    "ckconv_fft",
    kind="suite",
    papers=("ccnn", "flexconv"),
    summary="separable CKConv: FFT path vs direct path, input-length kernels (1-D) and CIFAR 33×33 kernels (2-D)",
)
def ckconv_fft_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """One case per (dim, size, kernel): ``fft=True`` (A) against ``fft=False`` (B), 32 → 32 channels."""
    batch = batch or 1
    return [
        Case(
            name=f"{dim}d {batch}x{CHANNELS}x{side} k{kernel}",
            a="fft",
            b="direct",
            build=partial(_pair, dim, side, kernel, batch),
            same_output=True,
        )
        for dim, side, kernel in (QUICK if quick else FULL)
    ]
