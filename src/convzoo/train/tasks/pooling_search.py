"""Pooling search (S66): train the balanced mixture of SuperNets, then rank the pooling configurations.

Training follows the official code (``convzoo.models.pooling_supernet`` describes the model and the balancing):
the training split is cut in two with a fixed seed (``val_fraction`` = 0.5 of it scores, the rest trains). Every
batch samples one configuration ``a`` uniformly and one SuperNet ``m`` from the balanced ``p(m | a)`` at temperature
``T = t0 + (tmax − t0) · progress`` (1 → 100), takes one SGD step of that SuperNet under that configuration (the
other SuperNets get no gradient, so SGD leaves them and their momentum untouched), scores the pair on a validation
batch and moves ``W[a, m]`` toward that accuracy with EMA decay ``ema`` = 0.9. Recipe as the official run: SGD
0.1, momentum 0.9, no weight decay, plain cross-entropy (the trainer's ``label_smoothing`` is not used), cosine
decay (the trainer's, to 0 after a short warm-up and with Nesterov's momentum, where the official one decays to
0.001 without either).

``W`` starts at 1 (the official value), above any accuracy, so routing favours pairs not yet tried until their
scores settle; a short run (the digits default: 22 batches an epoch for 36 × 4 pairs) leaves many pairs untried
and ``W`` close to where it started, which is why the search scores every configuration on the whole validation
half rather than reading ``W``.

The search (:func:`search`, ``convzoo search-pooling CKPT``) scores every configuration on the whole validation
split with the SuperNet it is assigned to (``argmax_m p(m | a)``) and ranks them; the best one's standalone network
(``pooling_resnet20`` with that SuperNet's weights copied) is then scored on the test split, and retrains with
``convzoo train --model pooling_resnet20 --cfg pool_at=...``. Each epoch's test metrics are those of the current
best configuration by ``W``: ``acc`` on the test split, its running validation score ``score``.

Departures: the validation batch of a step is the one paired with its training batch (validation image
``i mod |val|`` with training image ``i``; the official code draws them from a second loader) and it is scored
before the step's update (the official code scores after it). The sampling is seeded by the run's seed and the
number of batches trained, so ``--resume`` continues exactly. One process only: a step trains one SuperNet, which
DDP cannot synchronise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_number
from convzoo.data.base import load_dataset
from convzoo.models import create_model
from convzoo.models.pooling_supernet import PoolingMixture
from convzoo.registry import MODELS, TASKS
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["PoolingSearch", "SearchSplit", "Ranked", "search", "validation_split", "accuracy"]

SPLIT_SEED = 0  # the fixed seed of the train/validation cut (the official code fixes its split too)


def _halves(size: int, val_fraction: float) -> tuple[Tensor, Tensor]:
    """``(train, val)`` index tensors: a seeded permutation of ``range(size)`` cut at ``val_fraction``."""
    check_number(val_fraction, "val_fraction", "pooling-search", low=0.0, high=1.0, high_open=True)
    order = torch.randperm(size, generator=torch.Generator().manual_seed(SPLIT_SEED))
    cut = round(size * val_fraction)
    if cut < 1 or cut >= size:
        raise ValueError(f"pooling-search: val_fraction={val_fraction} of {size} images leaves an empty half")
    return order[cut:], order[:cut]


class SearchSplit(Dataset):
    """The training half of a training split, each image paired with one of the validation half: item ``i`` is
    ``(image, label, val_image, val_label)``, the validation image ``i mod |val|``."""

    def __init__(self, base: Dataset, val_fraction: float) -> None:
        self.base = base
        self.train_index, self.val_index = _halves(len(base), val_fraction)
        self.info = dataclasses.replace(base.info, extra={**base.info.extra, "val_fraction": val_fraction})

    def __len__(self) -> int:
        return len(self.train_index)

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        image, label = self.base[int(self.train_index[i])][:2]
        val_image, val_label = self.base[int(self.val_index[i % len(self.val_index)])][:2]
        return image, label, val_image, val_label


class _Subset(Dataset):
    def __init__(self, base: Dataset, index: Tensor) -> None:
        self.base, self.index = base, index
        self.info = dataclasses.replace(base.info, split="validation")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Any:
        return self.base[int(self.index[i])][:2]


def validation_split(data: str, root: str | None, val_fraction: float) -> Dataset:
    """The validation half of ``data``'s training split, as the task cut it (``(image, label)`` items)."""
    base = load_dataset(data, "train", root)
    return _Subset(base, _halves(len(base), val_fraction)[1])


@torch.no_grad()
def accuracy(forward: Callable[[Tensor], Tensor], dataset: Dataset, batch_size: int, device: torch.device) -> float:
    """Top-1 accuracy of ``forward`` over ``dataset`` in batches of ``batch_size`` (in the dataset's order)."""
    correct = seen = 0
    for images, labels in DataLoader(dataset, batch_size=batch_size):
        logits = forward(images.to(device))  # (B, classes)
        correct += (logits.argmax(1).cpu() == labels).sum().item()
        seen += labels.numel()
    return correct / max(seen, 1)


@dataclass(frozen=True)
class Ranked:
    """One configuration in the search's ranking: its ``pool_at``, the SuperNet it is assigned to, its validation
    ``accuracy`` there, its running score ``W`` and the batches it trained on that SuperNet."""

    rank: int
    index: int
    pool_at: tuple[int, ...]
    supernet: int
    accuracy: float
    score: float
    batches: int


def search(
    model: PoolingMixture,
    dataset: Dataset,
    *,
    batch_size: int = 128,
    threshold: float = 1e-4,
    device: torch.device | None = None,
    on_config: Callable[[int], None] | None = None,
) -> list[Ranked]:
    """Every configuration scored on ``dataset`` with its assigned SuperNet, best first (ties: higher ``W``, then
    the earlier configuration). ``on_config(i)`` is called after each one (progress)."""
    device = device or next(model.parameters()).device
    model.eval()
    assigned = model.assigned(threshold)  # (A,)
    rows = []
    for index in range(len(model.configs)):
        supernet, pool_at = int(assigned[index]), model.config(index)
        net = model.supernets[supernet]
        acc = accuracy(lambda x, net=net, pool_at=pool_at: net(x, pool_at), dataset, batch_size, device)
        rows.append((index, pool_at, supernet, acc, float(model.scores[index, supernet])))
        if on_config is not None:
            on_config(index)
    rows.sort(key=lambda r: (-r[3], -r[4], r[0]))
    return [
        Ranked(rank, i, pool_at, m, acc, score, int(model.counts[i, m]))
        for rank, (i, pool_at, m, acc, score) in enumerate(rows, start=1)
    ]


@TASKS.register("pooling-search", kind="task", papers=("pooling-supernets",))
class PoolingSearch(Task):
    """Balanced mixture of SuperNets over the pooling positions (S66); test metrics of the current best one."""

    name = "pooling-search"
    primary = "acc"
    model_kinds = ("pooling-supernet",)
    options = {"t0": 1.0, "tmax": 100.0, "ema": 0.9, "threshold": 1e-4, "val_fraction": 0.5}
    recipe = {"optimizer": "sgd", "lr": 0.1, "weight_decay": 0.0, "label_smoothing": 0.0}
    distributed = False
    single_process = "each step trains one sampled supernet of the mixture, which DDP cannot keep in step"

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        owner = "pooling-search"
        check_number(options["t0"], "t0", owner)
        check_number(options["tmax"], "tmax", owner)
        check_number(options["ema"], "ema", owner, low=0.0, high=1.0, high_open=True, low_open=False)
        check_number(options["threshold"], "threshold", owner)
        check_number(options["val_fraction"], "val_fraction", owner, low=0.0, high=1.0, high_open=True)
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        base = load_dataset(data, split, root)
        if split == "train":
            return SearchSplit(base, options["val_fraction"])
        base.info.extra["threshold"] = options["threshold"]
        return base

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        return {"model": config.model, "in_chans": info.channels, "num_classes": info.num_classes, "cfg": config.cfg}

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        for key in ("classes", "in_channels"):
            if key in cfg:
                raise ValueError(f"pooling-search: {key} comes from the data, not --cfg (got {key}={cfg[key]!r})")
        return create_model(
            architecture["model"], classes=architecture["num_classes"], in_channels=architecture["in_chans"], **cfg
        )

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        model: PoolingMixture = getattr(net, "module", net)
        options = config.options
        images, labels, val_images, val_labels = batch  # (B, C, H, W), (B,), (B, C, H, W), (B,)
        model.temperature.fill_(options["t0"] + (options["tmax"] - options["t0"]) * model.progress)
        generator = torch.Generator().manual_seed(config.seed * 1_000_003 + int(model.steps))
        index = int(torch.randint(len(model.configs), (1,), generator=generator))  # a ~ U(A)
        probs = model.assignment(options["threshold"])[index].cpu()  # (K,) balanced p(m | a)
        supernet = int(torch.multinomial(probs, 1, generator=generator))
        pool_at, chosen = model.config(index), model.supernets[supernet]
        logits = chosen(images, pool_at)  # (B, classes)
        loss = F.cross_entropy(logits.float(), labels)  # plain, as the official code (no label smoothing)
        with torch.no_grad():
            was_training = chosen.training
            chosen.eval()
            val_correct = (chosen(val_images, pool_at).argmax(1) == val_labels).sum().item()
            chosen.train(was_training)
        model.record(index, supernet, val_correct / val_labels.numel(), options["ema"])
        model.steps += 1
        count = labels.numel()
        train_correct = (logits.argmax(1) == labels).sum().item()
        return loss, {"seen": count, "loss_sum": loss.item() * count, "acc": train_correct, "val_acc": val_correct}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        index, supernet = model.best(dataset.info.extra.get("threshold", 1e-4))
        net, pool_at = model.supernets[supernet], model.config(index)
        loss, correct, seen = 0.0, 0, 0
        for images, labels in DataLoader(dataset, batch_size=128):
            logits = net(images.to(device), pool_at).float()  # (B, classes)
            labels = labels.to(device)
            loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += labels.numel()
        return {"loss": loss / seen, "acc": correct / seen, "score": float(model.scores[index, supernet])}

    def describe(self, architecture: dict[str, Any]) -> str:
        cfg = config_overrides(architecture)
        supernets = cfg.get("supernets", MODELS.get(architecture["model"]).info.config.supernets)
        return f"{architecture['model']} (pooling-search: {supernets} SuperNets), {architecture['in_chans']} channels"
