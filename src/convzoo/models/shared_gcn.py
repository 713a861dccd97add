"""GCN with one global adjacency shared by every layer (S94, Gavranović et al., "Graph Convolutional Neural Networks
as Parametric CoKleisli morphisms").

The paper factors a GCN through ``Para(CoKl(R^{n×n} × −))``: every layer reads the same adjacency from the
product comonad's context instead of holding its own, so the adjacency is *one* global parameter. Here it is a
single ``(V, V)`` tensor owned by the model, initialised to ``S = D̃^{-1/2}(A + I)D̃^{-1/2}`` and passed to every
layer ``H ← σ(S H W_l)``; with ``learn_adjacency=True`` it is an ``nn.Parameter`` that every layer's gradient
reaches, with ``False`` a buffer (plain Kipf & Welling GCN). Departure: the paper is categorical and prescribes
no training recipe; the layer sizes follow Kipf & Welling (16 hidden units, ReLU, dropout 0.5, two layers).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.graph import dense_normalized_adjacency
from convzoo.core.validate import check_int
from convzoo.registry import MODELS, ModelInfo

__all__ = ["SharedAdjacencyGCN", "SharedGCNConfig", "GraphConvLayer"]


@dataclass(frozen=True)
class SharedGCNConfig:
    num_nodes: int = 34
    in_features: int = 34
    hidden: int = 16
    num_classes: int = 2
    layers: int = 2
    dropout: float = 0.5
    learn_adjacency: bool = True


class GraphConvLayer(nn.Module):
    """One GCN layer that owns only its weights: ``forward(h, adjacency) = adjacency @ h @ W + b``."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, h: Tensor, adjacency: Tensor) -> Tensor:
        return adjacency @ self.linear(h)  # (V, out)


class SharedAdjacencyGCN(nn.Module):
    """GCN (S94) whose layers share one global adjacency ``self.adjacency`` (V, V): a parameter or a buffer."""

    def __init__(self, config: SharedGCNConfig, edge_index: Tensor | None = None) -> None:
        super().__init__()
        name = "shared_gcn"
        check_int(config.layers, "layers", name)
        self.config = config
        if edge_index is None:
            adjacency = torch.eye(config.num_nodes)
        else:
            adjacency = dense_normalized_adjacency(edge_index, config.num_nodes)
        if config.learn_adjacency:
            self.adjacency = nn.Parameter(adjacency)
        else:
            self.register_buffer("adjacency", adjacency)
        widths = [config.in_features] + [config.hidden] * (config.layers - 1) + [config.num_classes]
        self.layers = nn.ModuleList(GraphConvLayer(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape != (self.config.num_nodes, self.config.in_features):
            raise ValueError(
                f"shared_gcn: expected node features ({self.config.num_nodes}, {self.config.in_features}), "
                f"got {tuple(x.shape)}"
            )
        h = x
        for i, layer in enumerate(self.layers):
            h = F.dropout(h, self.config.dropout, self.training)
            h = layer(h, self.adjacency)  # every layer reads the same global adjacency
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return h  # (V, classes)


def _build(edge_index: Tensor | None = None, **overrides: Any) -> SharedAdjacencyGCN:
    return SharedAdjacencyGCN(replace(SharedGCNConfig(), **overrides), edge_index)


MODELS.register(
    "shared_gcn",
    kind="graph",
    dims=(1,),
    papers=("gcnn-cokleisli",),
    summary="S94 GCN whose layers share one global adjacency parameter (2 layers, 16 hidden, as Kipf & Welling)",
    info=ModelInfo(
        family=SharedAdjacencyGCN, config=SharedGCNConfig(), input_size=(34,), takes_op=False, num_classes=2
    ),
)(_build)
