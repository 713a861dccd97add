"""Fitting and scoring graph models: node classification (SGC, shared-adjacency GCN) and top-k recommendation.

Library functions for the graph families, until ``convzoo train`` grows a node-classification and a
recommendation task: ``fit_node_classifier`` (full-batch Adam on the training nodes, as SGC and GCN train),
``fit_recommender`` (BPR with one sampled negative per positive, as LCFN trains), and ``recall_ndcg_at_k`` with
``popularity_scores`` as the baseline every recommender must beat.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.graph import Graph, Interactions
from convzoo.core.validate import check_int, check_number

__all__ = [
    "NodeFit",
    "fit_node_classifier",
    "fit_recommender",
    "node_accuracy",
    "popularity_scores",
    "recall_ndcg_at_k",
]


@dataclass(frozen=True)
class NodeFit:
    train_accuracy: float
    test_accuracy: float
    final_loss: float


def _logits(model: nn.Module, graph: Graph) -> Tensor:
    """Call a node model the way its family takes input: ``(x, edge_index)`` or ``(x)`` (own adjacency)."""
    if len(inspect.signature(model.forward).parameters) >= 2:
        return model(graph.x, graph.edge_index)
    return model(graph.x)


def node_accuracy(model: nn.Module, graph: Graph, mask: Tensor) -> float:
    model.eval()
    with torch.no_grad():
        predicted = _logits(model, graph).argmax(1)
    return (predicted[mask] == graph.y[mask]).float().mean().item()


def fit_node_classifier(
    model: nn.Module, graph: Graph, epochs: int = 100, *, lr: float = 0.2, weight_decay: float = 5e-5, seed: int = 0
) -> NodeFit:
    """Full-batch Adam on the cross-entropy of the training nodes (SGC's recipe: lr 0.2, 100 epochs)."""
    check_int(epochs, "epochs", "fit_node_classifier")
    check_number(lr, "lr", "fit_node_classifier")
    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loss = torch.tensor(math.nan)
    for _ in range(epochs):
        model.train()
        loss = F.cross_entropy(_logits(model, graph)[graph.train_mask], graph.y[graph.train_mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return NodeFit(
        node_accuracy(model, graph, graph.train_mask), node_accuracy(model, graph, graph.test_mask), loss.item()
    )


def fit_recommender(
    model: nn.Module,
    data: Interactions,
    epochs: int = 50,
    *,
    lr: float = 0.01,
    l2: float = 1e-4,
    batch_size: int = 1024,
    seed: int = 0,
) -> float:
    """BPR, ``−log σ(s(u, i⁺) − s(u, i⁻))``, one uniformly sampled negative per training pair; returns the last loss.

    ``l2`` regularises the base embeddings of the batch (as LCFN's ``LAMDA`` does).
    """
    check_int(epochs, "epochs", "fit_recommender")
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    users, positives = data.train
    loss = torch.tensor(math.nan)
    for _ in range(epochs):
        order = torch.randperm(users.numel(), generator=generator)
        for start in range(0, users.numel(), batch_size):
            batch = order[start : start + batch_size]
            u, pos = users[batch], positives[batch]
            neg = torch.randint(0, data.num_items, (batch.numel(),), generator=generator)
            user_emb, item_emb = model.embeddings()
            pos_score = (user_emb[u] * item_emb[pos]).sum(-1)
            neg_score = (user_emb[u] * item_emb[neg]).sum(-1)
            loss = -F.logsigmoid(pos_score - neg_score).mean()
            base = [
                model.user_embedding[u],
                model.item_embedding[pos],
                model.item_embedding[neg],
            ]
            loss = loss + l2 * sum(b.square().sum() for b in base) / batch.numel()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return loss.item()


def popularity_scores(data: Interactions) -> Tensor:
    """Every user scores every item by its number of training interactions ``(U, I)``: the baseline to beat."""
    counts = torch.bincount(data.train[1], minlength=data.num_items).float()
    return counts.expand(data.num_users, -1)


def recall_ndcg_at_k(scores: Tensor, data: Interactions, k: int = 20) -> tuple[float, float]:
    """Recall@k and NDCG@k over users with test items; training items are ranked last.

    Recall@k = |top-k ∩ test| / |test|; NDCG@k = DCG / ideal DCG with binary gains and ``log2(rank + 1)``
    discounts (the definitions LCFN, NGCF and LightGCN report).
    """
    check_int(k, "k", "recall_ndcg_at_k")
    scores = scores.clone().float()
    scores[data.train[0], data.train[1]] = -math.inf
    test = data.matrix("test")  # (U, I)
    has_test = test.sum(1) > 0
    top = scores.topk(min(k, data.num_items), dim=1).indices  # (U, k)
    hits = test.gather(1, top)  # (U, k): 1 where a top-k item is a test item
    recall = hits.sum(1) / test.sum(1).clamp_min(1)
    discount = 1.0 / torch.log2(torch.arange(2, top.shape[1] + 2).float())  # (k,)
    dcg = (hits * discount).sum(1)
    ideal = torch.stack([discount[: int(min(n, top.shape[1]))].sum() for n in test.sum(1).tolist()])
    ndcg = dcg / ideal.clamp_min(1e-12)
    return recall[has_test].mean().item(), ndcg[has_test].mean().item()
