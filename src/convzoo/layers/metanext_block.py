"""The MetaNeXt block (S40, Yu et al., "InceptionNeXt"; ConvNeXt S67's block): mixer → norm → MLP → γ, residual."""

from __future__ import annotations

from torch import Tensor, nn

from convzoo.layers.drop_path import DropPath
from convzoo.layers.layer_scale import optional_layer_scale
from convzoo.registry import LAYERS

__all__ = ["MetaNeXtBlock"]


@LAYERS.register("metanext_block", kind="layer", dims=(1, 2, 3), papers=("inceptionnext", "convnext"))
class MetaNeXtBlock(nn.Module):
    """MetaNeXt block (S40, the abstraction of the ConvNeXt S67 block): ``x + DropPath(γ ⊙ mlp(norm(mixer(x))))``.

    ``mixer`` maps ``(N, C, *S)`` to itself (ConvNeXt's depthwise 7×7, InceptionNeXt's Inception DW: the position
    ``op=`` replaces). ``channels_last=True`` runs ``norm``, ``mlp`` and the layer scale γ on ``(N, *S, C)``
    (ConvNeXt: ``nn.LayerNorm`` and ``nn.Linear``); otherwise on ``(N, C, *S)`` (InceptionNeXt: BatchNorm and a
    1×1-conv MLP). γ (``channels`` values) starts at ``layer_scale_init``; 0 leaves it out.
    """

    def __init__(
        self,
        mixer: nn.Module,
        norm: nn.Module,
        mlp: nn.Module,
        *,
        channels: int,
        layer_scale_init: float = 1e-6,
        drop_path: float = 0.0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.mixer = mixer
        self.norm = norm
        self.mlp = mlp
        self.layer_scale = optional_layer_scale(channels, layer_scale_init, channels_last=channels_last)
        self.drop_path = DropPath(drop_path)
        self.channels_last = channels_last

    def forward(self, x: Tensor) -> Tensor:
        y = self.mixer(x)
        if self.channels_last:
            y = y.movedim(1, -1)  # (N, *S, C): norm, MLP and γ act on the last dim
        y = self.layer_scale(self.mlp(self.norm(y)))
        if self.channels_last:
            y = y.movedim(-1, 1)  # (N, C, *S)
        return x + self.drop_path(y)
