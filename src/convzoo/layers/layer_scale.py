"""LayerScale (CaiT, Touvron et al., "Going deeper with Image Transformers"): a learnable per-channel scale."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number
from convzoo.registry import LAYERS

__all__ = ["LayerScale", "optional_layer_scale"]


@LAYERS.register("layer_scale", kind="layer", dims=(1, 2, 3), papers=("convnext",))
class LayerScale(nn.Module):
    """LayerScale (CaiT; the layer scale of ConvNeXt S67): ``x ⊙ γ`` with one learnable γ per channel, init ``init``.

    ``channels_last=False`` scales ``(N, C, *S)`` along dim 1; ``channels_last=True`` scales ``(..., C)`` along the
    last dim. ConvNeXt-era blocks scale a residual branch with a small ``init`` (1e-6); the MetaFormer baselines
    (S18) scale the shortcut with ``init`` 1 (their "res-scale").
    """

    def __init__(self, channels: int, init: float = 1e-6, *, channels_last: bool = False) -> None:
        super().__init__()
        check_int(channels, "channels", "layer_scale")
        check_number(init, "init", "layer_scale", low=None)
        self.channels_last = channels_last
        self.scale = nn.Parameter(torch.full((channels,), float(init)))

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            return x * self.scale
        return x * self.scale.view(-1, *(1,) * (x.dim() - 2))  # γ as (C, 1, ..., 1)

    def extra_repr(self) -> str:
        return f"{self.scale.numel()}, channels_last={self.channels_last}"


def optional_layer_scale(channels: int, init: float, *, channels_last: bool = False) -> nn.Module:
    """:class:`LayerScale` starting at ``init``, or ``nn.Identity`` when ``init ≤ 0`` (how configs disable it)."""
    if init <= 0:
        return nn.Identity()
    return LayerScale(channels, init, channels_last=channels_last)
