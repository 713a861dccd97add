"""What the super-resolution families share: the ``sr`` task's registration, scale checks and the upsampling tails.

An ``sr`` model maps ``(N, 3, H, W)`` images in [0, 1] to ``(N, 3, sH, sW)``. Its config dataclass carries
``scale``; ``create_model(name, scale=2)`` builds another scale of the same variant.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_choice
from convzoo.models.registration import register_variant

SCALES = (2, 3, 4)
# DIV2K's RGB mean, which EDSR-lineage SR networks (CARN, CFSR, SPAN) subtract before the first conv
DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


def check_scale(scale: Any, owner: str) -> int:
    return check_choice(scale, SCALES, "scale", owner)


def register_sr(
    name: str,
    family: type[nn.Module],
    config: Any,
    *,
    papers: tuple[str, ...],
    params: int | None,
    params_source: str,
    summary: str,
    test_cfg: dict[str, Any] | None = None,
) -> None:
    """Register ``name`` as ``family(config)`` of kind ``"sr"``; keyword overrides replace config fields.

    ``params`` is the published count of the registered config (``None`` where none was found or matched, and
    ``params_source`` says so).
    """
    register_variant(
        name,
        family,
        config,
        papers=papers,
        params=params,
        params_source=params_source,
        input_size=(3, 48, 48),
        summary=summary,
        task="sr",
        takes_op=False,
        num_classes=0,
        test_size=12,
        test_cfg=test_cfg,
    )


def he_init(module: nn.Module, scale: float = 1.0) -> None:
    """Every convolution in ``module``: He (fan-in, ReLU gain) normal weights times ``scale``, zero biases.

    ``scale=0.1`` is BasicSR's ``default_init_weights`` (the MSRResNet lineage: SCNet's released init); ``scale=1``
    is He et al. 2015's initialisation, which keeps a ReLU network's activations at unit scale through its depth.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            with torch.no_grad():
                m.weight.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class MeanShift(nn.Module):
    """``x − mean`` (``sign=-1``) or ``x + mean`` (``sign=+1``) per RGB channel; the mean is a constant buffer."""

    def __init__(self, mean: tuple[float, ...] = DIV2K_MEAN, sign: int = -1) -> None:
        super().__init__()
        self.register_buffer("mean", sign * torch.tensor(mean).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.mean


class PixelShuffleTail(nn.Sequential):
    """A conv to ``out_channels · s²`` channels, then ``pixel_shuffle(s)``: ``(N, C, H, W) → (N, out, sH, sW)``."""

    def __init__(self, in_channels: int, out_channels: int, scale: int, kernel_size: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels * scale * scale, kernel_size, padding=kernel_size // 2),
            nn.PixelShuffle(scale),
        )
