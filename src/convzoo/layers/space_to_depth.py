"""Space-to-depth and depth-to-space for any number of spatial dims (S95's SPD layer, pixel (un)shuffle)."""

from __future__ import annotations

from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.registry import LAYERS

__all__ = ["space_to_depth", "depth_to_space", "SpaceToDepth", "DepthToSpace"]


def _check(x: Tensor, scale: int, what: str) -> int:
    check_int(scale, "scale", what)
    if x.dim() < 3:
        raise ValueError(f"{what}: expected (N, C, *S) with at least one spatial dim, got shape {tuple(x.shape)}")
    return x.dim() - 2


def space_to_depth(x: Tensor, scale: int) -> Tensor:
    """``(N, C, *S) -> (N, C·scale^d, *S/scale)``; channel ``c·scale^d + flat(offsets)`` as in ``pixel_unshuffle``.

    Every spatial size must be divisible by ``scale``. Nothing is lost: :func:`depth_to_space` inverts it.
    """
    dim = _check(x, scale, "space_to_depth")
    n, c, *size = x.shape
    if any(s % scale for s in size):
        raise ValueError(f"space_to_depth: spatial size {tuple(size)} is not divisible by scale {scale}")
    split = [v for s in size for v in (s // scale, scale)]
    x = x.reshape(n, c, *split)  # (N, C, S0/r, r, S1/r, r, ...)
    outer = [2 + 2 * i for i in range(dim)]
    inner = [3 + 2 * i for i in range(dim)]
    x = x.permute(0, 1, *inner, *outer)  # (N, C, r, r, ..., S0/r, S1/r, ...)
    return x.reshape(n, c * scale**dim, *(s // scale for s in size))


def depth_to_space(x: Tensor, scale: int) -> Tensor:
    """``(N, C·scale^d, *S) -> (N, C, *S·scale)``, the inverse of :func:`space_to_depth` (``pixel_shuffle``)."""
    dim = _check(x, scale, "depth_to_space")
    n, c_in, *size = x.shape
    if c_in % scale**dim:
        raise ValueError(f"depth_to_space: channels {c_in} are not divisible by scale^{dim} = {scale**dim}")
    c = c_in // scale**dim
    x = x.reshape(n, c, *([scale] * dim), *size)  # (N, C, r, r, ..., S0, S1, ...)
    order = [p for i in range(dim) for p in (2 + dim + i, 2 + i)]
    x = x.permute(0, 1, *order)  # (N, C, S0, r, S1, r, ...)
    return x.reshape(n, c, *(s * scale for s in size))


@LAYERS.register("space_to_depth", kind="layer", dims=(1, 2, 3), papers=("spd-conv",), linear=True)
class SpaceToDepth(nn.Module):
    """Space-to-depth (S95, SPD-Conv): folds each scale^d block of pixels into channels, losing nothing."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        return space_to_depth(x, self.scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


@LAYERS.register("depth_to_space", kind="layer", dims=(1, 2, 3), linear=True)
class DepthToSpace(SpaceToDepth):
    """Depth-to-space (sub-pixel shuffle): unfolds channels into scale^d blocks of pixels."""

    def forward(self, x: Tensor) -> Tensor:
        return depth_to_space(x, self.scale)
