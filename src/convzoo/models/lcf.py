"""LCFN (S59, Yu & Qin 2020): graph convolution for recommendation with low-pass collaborative filters.

LCF convolves user (item) embeddings on a user (item) graph in its Fourier basis, keeping only the lowest
frequencies: with ``P`` the ``F_u`` eigenvectors of the user graph's Laplacian with the smallest eigenvalues,

    E_u ← σ(P diag(f_u) Pᵀ E_u W)        (and likewise for items with Q, f_i, sharing W per layer)

so the filter ``P diag(f) Pᵀ`` passes only smooth signals (exposure and quantisation noise live in the high
frequencies) and costs ``O(V·F)`` instead of ``O(V²)``. The user graph is the hypergraph whose hyperedges are
items (and vice versa): ``L_u = I − D_u^{-1/2} R D_i^{-1} Rᵀ D_u^{-1/2}`` for the interaction matrix ``R``.
Embeddings of every layer are concatenated and scored by inner product; training uses the BPR loss.
Defaults follow the official code (one layer, 128-d embeddings, filters initialised at 1, sigmoid); the
numbers of frequencies are tuned per data set in the paper, here 64 for users and items (a choice).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.registry import MODELS, ModelInfo

__all__ = ["LCFN", "LCFNConfig", "hypergraph_laplacian", "low_frequency_basis"]


@dataclass(frozen=True)
class LCFNConfig:
    num_users: int = 943
    num_items: int = 1682
    embedding_dim: int = 128
    layers: int = 1
    user_frequencies: int = 64
    item_frequencies: int = 64


def hypergraph_laplacian(interactions: Tensor) -> tuple[Tensor, Tensor]:
    """User and item hypergraph Laplacians ``(U, U)`` and ``(I, I)`` of a dense 0/1 interaction matrix ``(U, I)``."""
    r = interactions.double()
    user_degree, item_degree = r.sum(1).clamp_min(1), r.sum(0).clamp_min(1)
    du, di = user_degree.rsqrt(), item_degree.rsqrt()
    user_adjacency = (du[:, None] * r / item_degree) @ (r.T * du[None, :])  # D_u^-1/2 R D_i^-1 Rᵀ D_u^-1/2
    item_adjacency = (di[:, None] * r.T / user_degree) @ (r * di[None, :])
    return torch.eye(len(r), dtype=r.dtype) - user_adjacency, torch.eye(r.shape[1], dtype=r.dtype) - item_adjacency


def low_frequency_basis(laplacian: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """The ``count`` eigenvalues ``(count,)`` and eigenvectors ``(V, count)`` of smallest eigenvalue."""
    values, vectors = torch.linalg.eigh(laplacian)  # ascending
    return values[:count], vectors[:, :count]


class LCFN(nn.Module):
    """LCFN (S59): low-pass collaborative filters ``P diag(f) Pᵀ`` on user and item hypergraphs, BPR scoring."""

    def __init__(self, config: LCFNConfig, interactions: Tensor | None = None) -> None:
        super().__init__()
        name = "lcfn"
        for field in ("num_users", "num_items", "embedding_dim", "user_frequencies", "item_frequencies"):
            check_int(getattr(config, field), field, name)
        check_int(config.layers, "layers", name, low=0)
        if config.user_frequencies > config.num_users or config.item_frequencies > config.num_items:
            raise ValueError(
                f"{name}: frequencies ({config.user_frequencies}, {config.item_frequencies}) exceed "
                f"the users and items ({config.num_users}, {config.num_items})"
            )
        self.config = config
        if interactions is None:
            interactions = torch.zeros(config.num_users, config.num_items)
        if interactions.shape != (config.num_users, config.num_items):
            raise ValueError(
                f"{name}: interactions must be ({config.num_users}, {config.num_items}), "
                f"got {tuple(interactions.shape)}"
            )
        user_laplacian, item_laplacian = hypergraph_laplacian(interactions)
        _, user_basis = low_frequency_basis(user_laplacian, config.user_frequencies)
        _, item_basis = low_frequency_basis(item_laplacian, config.item_frequencies)
        self.register_buffer("user_basis", user_basis.float())  # (U, F_u): P
        self.register_buffer("item_basis", item_basis.float())  # (I, F_i): Q
        d = config.embedding_dim
        # the official initialisation: N(0.01, 0.02²) embeddings and transforms, filters N(1, 0.001²)
        self.user_embedding = nn.Parameter(torch.randn(config.num_users, d) * 0.02 + 0.01)
        self.item_embedding = nn.Parameter(torch.randn(config.num_items, d) * 0.02 + 0.01)
        self.user_filters = nn.ParameterList(
            nn.Parameter(torch.randn(config.user_frequencies) * 0.001 + 1) for _ in range(config.layers)
        )
        self.item_filters = nn.ParameterList(
            nn.Parameter(torch.randn(config.item_frequencies) * 0.001 + 1) for _ in range(config.layers)
        )
        self.transforms = nn.ParameterList(nn.Parameter(torch.randn(d, d) * 0.02 + 0.01) for _ in range(config.layers))

    @staticmethod
    def low_pass(basis: Tensor, response: Tensor, signal: Tensor) -> Tensor:
        """``P diag(response) Pᵀ signal``: ``(V, F)``, ``(F,)``, ``(V, D)`` → ``(V, D)``."""
        return basis @ (response[:, None] * (basis.T @ signal))

    def embeddings(self) -> tuple[Tensor, Tensor]:
        """User ``(U, D·(layers+1))`` and item ``(I, D·(layers+1))`` embeddings, every layer's output concatenated."""
        users, items = [self.user_embedding], [self.item_embedding]
        for user_filter, item_filter, transform in zip(
            self.user_filters, self.item_filters, self.transforms, strict=True
        ):
            users.append(torch.sigmoid(self.low_pass(self.user_basis, user_filter, users[-1]) @ transform))
            items.append(torch.sigmoid(self.low_pass(self.item_basis, item_filter, items[-1]) @ transform))
        return torch.cat(users, 1), torch.cat(items, 1)

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Scores ``(B,)`` of user–item pairs."""
        user_emb, item_emb = self.embeddings()
        return (user_emb[users] * item_emb[items]).sum(-1)

    def scores(self) -> Tensor:
        """Every user's score for every item ``(U, I)``."""
        user_emb, item_emb = self.embeddings()
        return user_emb @ item_emb.T


def _build(interactions: Tensor | None = None, **overrides: Any) -> LCFN:
    return LCFN(replace(LCFNConfig(), **overrides), interactions)


MODELS.register(
    "lcfn",
    kind="recommend",
    dims=(1,),
    papers=("lcfn",),
    summary="S59 LCFN: low-pass collaborative filters on user and item hypergraphs (1 layer, 128-d, BPR)",
    info=ModelInfo(family=LCFN, config=LCFNConfig(), input_size=(943,), takes_op=False, num_classes=1682),
)(_build)
