"""SGC (S73, Wu et al. 2019): K steps of GCN propagation with no non-linearity, computed once, then one linear map.

Removing the non-linearities between ``K`` GCN layers collapses them to ``softmax(S^K X Θ)`` with
``S = D̃^{-1/2} (A + I) D̃^{-1/2}``: a fixed low-pass filter ``S^K`` applied to the features once (it has no
parameters, so it can be precomputed) followed by a linear classifier. The paper's default is ``K = 2``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from convzoo.core.graph import check_edge_index, normalized_adjacency
from convzoo.core.validate import check_int
from convzoo.registry import OPS

__all__ = ["SGConv", "propagate"]

NAME = "sgc"


def propagate(x: Tensor, edge_index: Tensor, steps: int) -> Tensor:
    """``S^K x``: ``steps`` multiplications of node features ``(V, F)`` by the normalised adjacency with self-loops."""
    adjacency = normalized_adjacency(edge_index, x.shape[0], dtype=x.dtype)  # sparse (V, V)
    for _ in range(steps):
        x = torch.sparse.mm(adjacency, x)  # (V, F)
    return x


@OPS.register(NAME, kind="graph", dims=(1,), papers=("sgc",))
class SGConv(nn.Module):
    """SGC (S73): ``S^K X Θ + b`` with the K-step propagation ``S^K X`` computed once and cached (K = kernel_size).

    ``forward(x (V, C_in), edge_index (2, E)) -> (V, C_out)``. Nodes are the one axis (``dims=(1,)``, so
    ``create_op("sgc", C_in, C_out, K, dim=1)``); ``stride`` must be 1. With ``cached=True`` (the default: SGC
    is transductive, one graph) the propagated features of the first call are kept and reused while the same
    ``x`` and ``edge_index`` objects come back; ``reset_cache()`` forgets them.
    """

    def __init__(self, in_channels, out_channels, kernel_size=2, stride=1, *, dim=1, bias=True, cached=True):
        super().__init__()
        check_int(in_channels, "in_channels", NAME)
        check_int(out_channels, "out_channels", NAME)
        self.steps = check_int(kernel_size, "kernel_size (the propagation steps K)", NAME, low=0)
        check_int(stride, "stride", NAME, high=1)
        check_int(dim, "dim", NAME, low=1, high=1)
        self.in_channels, self.out_channels, self.cached = in_channels, out_channels, bool(cached)
        self.linear = nn.Linear(in_channels, out_channels, bias=bias)
        self._cache: tuple[Tensor, Tensor, Tensor] | None = None  # (x, edge_index, S^K x): held, so never stale

    def reset_cache(self) -> None:
        self._cache = None

    def features(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """``S^K x`` ``(V, C_in)``, from the cache when ``x`` and ``edge_index`` are the cached ones."""
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"{NAME}: expected node features (V, C_in={self.in_channels}), got {tuple(x.shape)}")
        check_edge_index(edge_index, x.shape[0], NAME)
        if self.cached and self._cache is not None and self._cache[0] is x and self._cache[1] is edge_index:
            return self._cache[2]
        propagated = propagate(x, edge_index, self.steps)
        if self.cached:  # S^K x holds no parameter: the cache keeps no graph
            propagated = propagated.detach()
            self._cache = (x, edge_index, propagated)
        return propagated

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.linear(self.features(x, edge_index))  # (V, C_out)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, K={self.steps}, cached={self.cached}"
