"""Graphs as tensors: a node-classification :class:`Graph` and the normalised adjacency every GCN-style op uses.

A graph is ``edge_index`` ``(2, E)`` (row 0 the source, row 1 the target of each directed edge; an undirected
graph lists both directions) over ``num_nodes`` nodes. ``normalized_adjacency`` builds Kipf & Welling's
``S = D̃^{-1/2} (A + I) D̃^{-1/2}`` as a sparse tensor; SGC, the shared-adjacency GCN and the data loaders use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "Graph",
    "Interactions",
    "check_edge_index",
    "dense_normalized_adjacency",
    "normalized_adjacency",
    "undirected",
]


@dataclass(frozen=True)
class Graph:
    """Node features ``x`` (V, F), ``edge_index`` (2, E), labels ``y`` (V,) and boolean split masks (V,)."""

    name: str
    x: Tensor
    edge_index: Tensor
    y: Tensor
    train_mask: Tensor
    test_mask: Tensor
    num_classes: int
    val_mask: Tensor | None = None

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_features(self) -> int:
        return self.x.shape[1]


@dataclass(frozen=True)
class Interactions:
    """A user–item bipartite graph for recommendation: ``train`` and ``test`` are ``(2, N)`` [user; item] pairs."""

    name: str
    num_users: int
    num_items: int
    train: Tensor
    test: Tensor

    def matrix(self, split: str = "train") -> Tensor:
        """The dense ``(users, items)`` 0/1 interaction matrix of ``split``."""
        pairs = self.train if split == "train" else self.test
        out = torch.zeros(self.num_users, self.num_items)
        out[pairs[0], pairs[1]] = 1.0
        return out


def check_edge_index(edge_index: Tensor, num_nodes: int, owner: str) -> Tensor:
    """``edge_index`` if it is an integer ``(2, E)`` tensor of node ids in ``[0, num_nodes)``, else ``ValueError``."""
    if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"{owner}: edge_index must be an integer (2, E) tensor, got {edge_index.dtype} {tuple(edge_index.shape)}"
        )
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(
            f"{owner}: edge_index holds node ids in [{int(edge_index.min())}, {int(edge_index.max())}], "
            f"expected [0, {num_nodes})"
        )
    return edge_index.long()


def undirected(edge_index: Tensor) -> Tensor:
    """Both directions of every edge, each pair once, self-loops dropped: ``(2, E')``."""
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    both = both[:, both[0] != both[1]]
    return torch.unique(both, dim=1)


def normalized_adjacency(
    edge_index: Tensor, num_nodes: int, *, self_loops: bool = True, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Sparse ``D̃^{-1/2} (A + I) D̃^{-1/2}`` ``(V, V)`` (COO, coalesced); ``self_loops=False`` leaves out ``I``.

    Repeated edges count once; ``A[i, j] = 1`` for an edge ``j → i`` (so ``S @ x`` gathers from sources).
    """
    edge_index = check_edge_index(edge_index, num_nodes, "normalized_adjacency")
    target, source = edge_index[1], edge_index[0]
    keep = target != source
    target, source = target[keep], source[keep]
    if self_loops:
        loop = torch.arange(num_nodes, device=edge_index.device)
        target, source = torch.cat([target, loop]), torch.cat([source, loop])
    pairs = torch.unique(torch.stack([target, source]), dim=1)  # (2, nnz): each (row, col) once
    degree = torch.zeros(num_nodes, dtype=dtype, device=edge_index.device).index_add_(
        0, pairs[0], torch.ones(pairs.shape[1], dtype=dtype, device=edge_index.device)
    )
    scale = degree.clamp_min(1).rsqrt()
    values = scale[pairs[0]] * scale[pairs[1]]
    return torch.sparse_coo_tensor(pairs, values, (num_nodes, num_nodes), check_invariants=True).coalesce()


def dense_normalized_adjacency(edge_index: Tensor, num_nodes: int, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """:func:`normalized_adjacency` as a dense ``(V, V)`` matrix."""
    return normalized_adjacency(edge_index, num_nodes, dtype=dtype).to_dense()
