"""The feature stage of the isotropic-block families (ConvNeXt S67, MetaFormer S18, ...): downsample, then blocks."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Stage"]


class Stage(nn.Module):
    """A feature stage: optional downsampling, then the blocks; ``(N, C, *S)`` in and out.

    ``channels_last=True`` runs the blocks on ``(N, *S, C)`` (MetaFormer's channels-last blocks): the stage moves
    the channels last after downsampling and back before returning.
    """

    def __init__(self, downsample: nn.Module | None, blocks: list[nn.Module], *, channels_last: bool = False) -> None:
        super().__init__()
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.blocks = nn.Sequential(*blocks)
        self.channels_last = channels_last

    def forward(self, x: Tensor) -> Tensor:
        x = self.downsample(x)
        if not self.channels_last:
            return self.blocks(x)
        x = self.blocks(x.movedim(1, -1))  # blocks on (N, *S, C)
        return x.movedim(-1, 1)  # (N, C, *S)
