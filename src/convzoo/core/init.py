"""Initialisers shared by operators and models, and the stochastic-depth (drop-path) schedule."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["conv_weight", "kaiming_conv_init_", "trunc_normal_init_", "drop_path_rates"]


def kaiming_conv_init_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default ``nn.ConvNd`` initialisation, so an op can stand in for a conv unchanged."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in = weight[0].numel()
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(bias, -bound, bound)


def conv_weight(
    out_channels: int, in_per_group: int, kernel_size: Sequence[int], bias: bool
) -> tuple[nn.Parameter, nn.Parameter | None]:
    """Parameters of a conv initialised like ``nn.ConvNd``: weight ``(C_out, C_in / g, *k)``, bias ``(C_out,)``."""
    weight = nn.Parameter(torch.empty(out_channels, in_per_group, *kernel_size))
    b = nn.Parameter(torch.empty(out_channels)) if bias else None
    kaiming_conv_init_(weight, b)
    return weight, b


def trunc_normal_init_(
    model: nn.Module, *, std: float = 0.02, skip: set[int] = frozenset(), head_init_scale: float = 1.0
) -> None:
    """The ConvNeXt-era initialisation: conv and linear weights ~ N(0, std²) truncated to [-2, 2], biases zero.

    The bounds are absolute, as in the official code's ``trunc_normal_(w, std=.02)`` calls, so at std 0.02
    they cut nothing.

    Modules whose ``id`` is in ``skip`` keep theirs; the classifier (``model.head.fc``) is then scaled by
    ``head_init_scale``.
    """
    for m in model.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear) and id(m) not in skip:
            nn.init.trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    fc = getattr(getattr(model, "head", None), "fc", None)
    if head_init_scale != 1.0 and isinstance(fc, nn.Linear):
        with torch.no_grad():
            fc.weight.mul_(head_init_scale)
            fc.bias.mul_(head_init_scale)


def drop_path_rates(last: float, count: int, *, endpoint: bool = True) -> list[float]:
    """Stochastic-depth rates of ``count`` blocks rising linearly from 0 (Huang et al.'s linear decay rule).

    ``endpoint=True`` (ConvNeXt, MetaFormer, UniRepLKNet, HorNet, ...) ends at ``last`` on the final block:
    ``last · i / (count − 1)``; ``endpoint=False`` (EfficientNet, SpaRTAN) stops one step short of it:
    ``last · i / count``.

    >>> drop_path_rates(0.5, 3)
    [0.0, 0.25, 0.5]
    >>> drop_path_rates(0.5, 4, endpoint=False)
    [0.0, 0.125, 0.25, 0.375]
    """
    steps = max(count - 1, 1) if endpoint else max(count, 1)
    return [last * i / steps for i in range(count)]
