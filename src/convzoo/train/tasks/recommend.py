"""Top-k recommendation on a user–item graph: BPR with one sampled negative per pair; recall@k and NDCG@k.

The test metrics ``ndcg`` and ``recall`` are at ``k`` (option, default 20, recorded beside them as ``k``).

The loss is LCFN's (S59): ``−log σ(s(u, i⁺) − s(u, i⁻))`` with one uniformly drawn negative item per training pair,
plus ``l2`` on the batch's base embeddings. Every test also scores the popularity ranking (``*_popularity``), the
baseline a recommender must beat. Like a node classifier, a graph-convolution recommender owns its graph (LCFN's
low-frequency bases), so :meth:`Recommend.create` builds on the interactions this task loaded last; a model rebuilt
from a checkpoint takes its bases from the checkpoint.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from convzoo.core.graph import Interactions
from convzoo.core.validate import check_int, check_number
from convzoo.data.base import load_dataset
from convzoo.models.graph_training import popularity_scores, recall_ndcg_at_k
from convzoo.registry import MODELS, TASKS
from convzoo.train.task import Batch, Task

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Recommend", "InteractionData", "InteractionInfo"]


@dataclass(frozen=True)
class InteractionInfo:
    """What a recommendation checkpoint records of its data."""

    name: str
    num_users: int
    num_items: int
    train_pairs: int
    test_pairs: int
    root: str | None = None


class InteractionData(Dataset):
    """The training ``(user, item)`` pairs of ``interactions`` as a dataset (the trainer shuffles and batches them)."""

    def __init__(self, interactions: Interactions, root: str | None) -> None:
        self.interactions = interactions
        self.info = InteractionInfo(
            interactions.name,
            interactions.num_users,
            interactions.num_items,
            interactions.train.shape[1],
            interactions.test.shape[1],
            root,
        )

    def __len__(self) -> int:
        return self.interactions.train.shape[1]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.interactions.train[0, index], self.interactions.train[1, index]


@TASKS.register("recommend", kind="task", papers=("lcfn",))
class Recommend(Task):
    """Top-k recommendation: a graph recommender trained with BPR, scored by recall@k and NDCG@k."""

    name = "recommend"
    primary = "ndcg"
    default_data = "synthetic-ratings"
    model_kinds = ("recommend",)
    options = {"k": 20, "l2": 1e-4}
    recipe = {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.0}
    unit = "test users"

    def examples(self, dataset: Dataset) -> int:
        return int(dataset.interactions.test[0].unique().numel())

    def __init__(self) -> None:
        self._interactions: Interactions | None = None

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_int(options["k"], "k", "train --task recommend")
        check_number(options["l2"], "l2", "train --task recommend", low=0.0)
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        interactions = load_dataset(data, split, root)
        if not isinstance(interactions, Interactions):
            raise ValueError(
                f"train --task recommend: {data!r} is not user–item data (try synthetic-ratings, movielens100k)"
            )
        self._interactions = interactions
        self._k = options["k"]
        self._l2 = options["l2"]
        return InteractionData(dataclasses.replace(interactions, name=data), root)

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        sizes = {"num_users": info.num_users, "num_items": info.num_items}
        return {"model": config.model, "cfg": {**sizes, **config.cfg}}

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        entry = MODELS.get(architecture["model"])
        cfg = dict(architecture.get("cfg", {}))
        if self._interactions is not None:
            return entry.obj(interactions=self._interactions.matrix("train"), **cfg)
        return entry.obj(**cfg)

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        users, positives = batch  # (B,), (B,)
        model = net.module if isinstance(net, nn.parallel.DistributedDataParallel) else net
        user_emb, item_emb = model.embeddings()  # (U, d), (I, d)
        negatives = torch.randint(0, item_emb.shape[0], users.shape, device=users.device)
        positive_score = (user_emb[users] * item_emb[positives]).sum(-1)
        negative_score = (user_emb[users] * item_emb[negatives]).sum(-1)
        loss = -F.logsigmoid(positive_score - negative_score).mean()
        base = (model.user_embedding[users], model.item_embedding[positives], model.item_embedding[negatives])
        loss = loss + config.options["l2"] * sum(b.square().sum() for b in base) / users.numel()
        count = users.numel()
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        interactions = dataset.interactions
        user_emb, item_emb = model.embeddings()
        scores = (user_emb @ item_emb.T).cpu()  # (U, I)
        k = getattr(self, "_k", self.options["k"])
        recall, ndcg = recall_ndcg_at_k(scores, interactions, k)
        base_recall, base_ndcg = recall_ndcg_at_k(popularity_scores(interactions), interactions, k)
        return {
            "ndcg": ndcg,
            "recall": recall,
            "ndcg_popularity": base_ndcg,
            "recall_popularity": base_recall,
        }

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        cfg = architecture.get("cfg", {})
        if (cfg.get("num_users"), cfg.get("num_items")) != (info.num_users, info.num_items):
            raise ValueError(
                f"{info.name} has {info.num_users} users × {info.num_items} items but the checkpoint's model was built "
                f"for {cfg.get('num_users')} × {cfg.get('num_items')}"
            )

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} (recommend)"
