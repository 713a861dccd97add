"""LayerNorm over the channel dim of a channels-first tensor (ConvNeXt/MetaFormer style), any spatial dims."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.registry import LAYERS

__all__ = ["LayerNormChannelsFirst"]


@LAYERS.register("layer_norm_cf", kind="layer", dims=(1, 2, 3))
class LayerNormChannelsFirst(nn.Module):
    """LayerNorm over channels of (N, C, *S): each pixel's C values normalised, then per-channel affine."""

    def __init__(self, channels: int, eps: float = 1e-6, *, affine: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(f"layer_norm_cf: expected (N, {self.channels}, *S), got shape {tuple(x.shape)}")
        # normalise over the channel dim by moving it last, where F.layer_norm works
        y = F.layer_norm(x.movedim(1, -1), (self.channels,), self.weight, self.bias, self.eps)  # (N, *S, C)
        return y.movedim(-1, 1)  # (N, C, *S)

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}, affine={self.weight is not None}"
