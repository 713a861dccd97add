"""DropPath (stochastic depth): drops a residual branch per sample during training."""

from __future__ import annotations

from torch import Tensor, nn

from convzoo.registry import LAYERS

__all__ = ["drop_path", "DropPath"]


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Zero whole samples of ``x`` (N, ...) with probability ``p`` and scale the rest by 1 / (1 − p)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"drop_path: p must be in [0, 1), got {p!r}")
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)  # (N, 1, ..., 1)
    return x * mask / keep


@LAYERS.register("drop_path", kind="layer", dims=(1, 2, 3))
class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for whole samples with probability p while training."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop_path: p must be in [0, 1), got {p!r}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
