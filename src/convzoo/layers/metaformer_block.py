"""The MetaFormer block (S18, Yu et al., "MetaFormer Baselines for Vision"): two pre-norm residual sub-blocks."""

from __future__ import annotations

from torch import Tensor, nn

from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import LayerScale
from convzoo.registry import LAYERS

__all__ = ["MetaFormerBlock"]


@LAYERS.register("metaformer_block", kind="layer", dims=(1, 2, 3), papers=("metaformer",))
class MetaFormerBlock(nn.Module):
    """MetaFormer block (S18): ``x = s₁ ⊙ x + DropPath(token_mixer(norm1(x)))``, then the same with ``mlp``, ``norm2``.

    ``s₁``, ``s₂`` are S18's res-scales: learnable per-channel scales of the *shortcut* (init 1) when
    ``res_scale``, else absent. The block keeps whatever layout its modules take: ``channels_last=True`` tells
    the res-scales that the channels are the last dim (MetaFormer runs ``(N, H, W, C)``; ParCNetV2 S109
    ``(N, C, H, W)``).
    """

    def __init__(
        self,
        norm1: nn.Module,
        token_mixer: nn.Module,
        norm2: nn.Module,
        mlp: nn.Module,
        *,
        channels: int,
        res_scale: bool = False,
        drop_path: float = 0.0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()

        def scale() -> nn.Module:
            return LayerScale(channels, 1.0, channels_last=channels_last) if res_scale else nn.Identity()

        self.norm1 = norm1
        self.token_mixer = token_mixer
        self.res_scale1 = scale()
        self.norm2 = norm2
        self.mlp = mlp
        self.res_scale2 = scale()
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        x = self.res_scale1(x) + self.drop_path(self.token_mixer(self.norm1(x)))
        return self.res_scale2(x) + self.drop_path(self.mlp(self.norm2(x)))
