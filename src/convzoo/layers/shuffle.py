"""Channel shuffle (S46, ShuffleNet): lets information cross the groups of stacked group convolutions."""

from __future__ import annotations

from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.registry import LAYERS

__all__ = ["channel_shuffle", "ChannelShuffle"]


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    """``(N, g·n, *S) -> (N, n·g, *S)``: reshape channels to (g, n), transpose to (n, g), flatten.

    Output channel ``j·g + i`` is input channel ``i·n + j``: a permutation.
    """
    if x.dim() < 2:
        raise ValueError(f"channel_shuffle: expected (N, C, *S), got shape {tuple(x.shape)}")
    n, c, *size = x.shape
    if c % check_int(groups, "groups", "channel_shuffle"):
        raise ValueError(f"channel_shuffle: channels ({c}) must be divisible by groups, got groups={groups!r}")
    x = x.reshape(n, groups, c // groups, *size)  # (N, g, C/g, *S)
    return x.transpose(1, 2).reshape(n, c, *size)  # (N, C/g · g, *S)


@LAYERS.register("channel_shuffle", kind="layer", dims=(1, 2, 3), papers=("shufflenet",), linear=True)
class ChannelShuffle(nn.Module):
    """Channel shuffle (S46, ShuffleNet): a fixed permutation interleaving the channels of g groups."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = check_int(groups, "groups", "channel_shuffle")

    def forward(self, x: Tensor) -> Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
