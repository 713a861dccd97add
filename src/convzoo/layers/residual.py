"""The residual block of ResNet (He et al., "Deep Residual Learning"): ``act(body(x) + shortcut(x))``."""

from __future__ import annotations

from torch import Tensor, nn

from convzoo.registry import LAYERS

__all__ = ["ResidualBlock"]


@LAYERS.register("residual_block", kind="layer", dims=(1, 2, 3), papers=("resnext", "senet"))
class ResidualBlock(nn.Module):
    """ResNet's residual block (He et al. 2016; ResNeXt S68, SE-ResNet S14, TResNet S65): act(body(x) + shortcut(x)).

    ``body`` is the family's residual branch (basic, bottleneck, binary, ...), ``shortcut`` the identity (``None``)
    or a projection, ``act`` the activation after the addition (``None``: none, as in XNOR-Net's blocks).
    """

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, act: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.body(x) + self.shortcut(x))
