"""StarReLU (S18, MetaFormer Baselines): ``s · relu(x)² + b`` with learnable scalars s and b."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.registry import LAYERS

__all__ = ["StarReLU", "star_relu"]


def star_relu(x: Tensor, scale: Tensor | float, bias: Tensor | float) -> Tensor:
    """``scale · relu(x)² + bias``, elementwise."""
    return scale * torch.relu(x).square() + bias


@LAYERS.register("star_relu", kind="layer", dims=(1, 2, 3), papers=("metaformer",))
class StarReLU(nn.Module):
    """StarReLU (S18): s·ReLU(x)² + b, cheaper than GELU; the paper's defaults s = 1, b = 0, both learnable.

    The paper motivates s ≈ 0.8944 and b ≈ −0.4472 to normalise the output for a standard normal
    input; its released models start from s = 1, b = 0 and learn both, which is the default here.
    """

    def __init__(self, scale: float = 1.0, bias: float = 0.0, *, learnable: bool = True) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)), requires_grad=learnable)
        self.bias = nn.Parameter(torch.tensor(float(bias)), requires_grad=learnable)

    def forward(self, x: Tensor) -> Tensor:
        return star_relu(x, self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"scale={self.scale.item():.4g}, bias={self.bias.item():.4g}"
