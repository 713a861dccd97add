"""Noise As Targets (S86): unsupervised features trained to map the images one-to-one onto fixed random points
on the unit sphere, with the assignment of points to images re-optimised on every batch.

Each of the ``n`` training images owns one of ``n`` targets drawn uniformly on the sphere ``S^{d−1}`` (fixed for
the run). The network's pooled features go through a linear projection to ``d`` and are L2-normalised; the loss
is the mean squared distance ``‖f(x_i) − c_{σ(i)}‖²``. On every batch the targets currently held by its images are
re-assigned among them by the Hungarian algorithm (``scipy.optimize.linear_sum_assignment`` on the cost
``−f(x_i)·c_j``, which minimises the summed squared distance), so ``σ`` stays a permutation of the targets. The
targets and ``σ`` are buffers of the model, saved with it: ``--resume`` continues with the same assignment.
Departure: the paper recomputes the batch assignment every 3 epochs; this does it every batch (its "stochastic
batch reassignment" made eager). Test metric: ``probe_acc``, a linear probe on the frozen backbone features.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_int
from convzoo.models import create_model
from convzoo.registry import TASKS
from convzoo.train.probe import linear_probe
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["IndexedDataset", "NATModel", "NoiseAsTargets", "reassign"]


class IndexedDataset(Dataset):
    """``(image, index)`` pairs of an image dataset: NAT's targets are per image."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset, self.info = dataset, dataset.info
        self.images = getattr(dataset, "images", None)
        self.labels = getattr(dataset, "labels", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.dataset[index][0], index


class NATModel(nn.Module):
    """A classifier backbone (head removed) + a linear projection to ``dim``, with the targets ``(n, dim)`` and the
    assignment ``(n,)`` (image ``i`` holds target ``assignment[i]``) as buffers."""

    def __init__(self, backbone: nn.Module, dim: int, count: int, seed: int, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.backbone = backbone
        self.backbone.reset_classifier(0)
        with torch.no_grad():
            width = backbone.eval()(torch.zeros(1, *input_shape)).shape[1]  # the pooled feature width
        backbone.train()
        self.projection = nn.Linear(width, dim)
        generator = torch.Generator().manual_seed(seed)
        targets = torch.randn(count, dim, generator=generator)
        self.register_buffer("targets", F.normalize(targets, dim=1))  # uniform on the sphere
        self.register_buffer("assignment", torch.randperm(count, generator=generator))

    def forward_features(self, x: Tensor) -> Tensor:
        return self.backbone.forward_features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        return self.backbone.forward_head(x, pre_logits=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, C, H, W) → (N, dim)`` unit-norm codes."""
        return F.normalize(self.projection(self.backbone(x)), dim=1)


def reassign(codes: Tensor, targets: Tensor) -> np.ndarray:
    """The permutation ``p`` minimising ``Σ_i ‖codes_i − targets_{p(i)}‖²`` for ``(B, d)`` unit codes and ``(B, d)``
    unit targets (Hungarian algorithm on ``−codes · targetsᵀ``)."""
    from scipy.optimize import linear_sum_assignment

    cost = -(codes.detach().double() @ targets.double().T).cpu().numpy()  # (B, B)
    rows, columns = linear_sum_assignment(cost)
    return columns[np.argsort(rows)]


@TASKS.register("nat", kind="task", papers=("noise-as-targets",))
class NoiseAsTargets(Task):
    """Noise As Targets: features matched one-to-one to random sphere points, Hungarian reassignment per batch."""

    name = "nat"
    primary = "probe_acc"
    model_kinds = ("classify",)
    options = {"dim": 64, "probe": True}
    recipe = {"optimizer": "sgd", "lr": 0.05}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_int(options["dim"], "dim", "train --task nat")
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        dataset = super().load(data, split, root, options)
        dataset.info.extra["probe"] = bool(options["probe"])
        dataset.info.extra["count"] = len(dataset)
        return IndexedDataset(dataset)

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        if config.ema_decay is not None:
            raise ValueError("train --task nat: takes no --ema (the assignment buffer is a permutation, not averaged)")
        return {
            "model": config.model,
            "op": config.op,
            "in_chans": info.channels,
            "size": list(info.image_size),
            "dim": config.options["dim"],
            "count": info.extra["count"],
            "seed": config.seed,
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        backbone = create_model(
            architecture["model"], num_classes=0, in_chans=architecture["in_chans"], op=architecture["op"], **cfg
        )
        shape = (architecture["in_chans"], *architecture["size"])
        return NATModel(backbone, architecture["dim"], architecture["count"], architecture["seed"], shape)

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        images, index = batch  # (B, C, H, W), (B,) dataset indices
        model = net.module if hasattr(net, "module") else net
        codes = net(images)  # (B, d)
        held = model.assignment[index]  # (B,) the targets these images hold
        order = torch.as_tensor(reassign(codes, model.targets[held]), device=held.device)
        model.assignment[index] = held[order]  # the batch's targets permuted among its images
        loss = (codes.float() - model.targets[model.assignment[index]]).pow(2).sum(1).mean()
        count = images.shape[0]
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        spread, seen = 0.0, 0
        for images, _ in DataLoader(dataset, batch_size=256):
            codes = model(images.to(device))
            spread += codes.mean(0).norm().item() * images.shape[0]  # 0: codes spread over the sphere
            seen += images.shape[0]
        metrics = {"loss": spread / max(seen, 1)}
        if dataset.info.extra.get("probe", True):
            metrics["probe_acc"] = linear_probe(model, dataset.info.name)
        return metrics

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} (noise as targets, {architecture['count']} targets in {architecture['dim']}-d)"
