"""RotNet (S76): self-supervision by predicting which of four rotations (0°, 90°, 180°, 270°) an image shows.

Every batch of ``B`` images becomes ``4B``: each image in all four rotations, labelled 0–3 (the paper's
finding that feeding all four rotations of an image together works best); the class labels are not used. The
network is any registered classifier with a 4-way head. Test metrics: rotation accuracy on the test split
and ``probe_acc``, the accuracy of a linear probe (logistic regression) on its frozen features, the recipe's
yardstick (``convzoo.train.probe``). The probe reads the pooled output of stage ``probe_stage`` (default −2, the
second-to-last stage: the paper finds the mid-level features transfer best, the last ones being specialised to
rotations).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.models import create_model
from convzoo.registry import TASKS
from convzoo.train.probe import linear_probe
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["RotNet", "rotations"]


def rotations(images: Tensor) -> tuple[Tensor, Tensor]:
    """``(B, C, H, W)`` square images → ``(4B, C, H, W)`` (all of them at 0°, then 90°, 180°, 270° counter-
    clockwise) and the ``(4B,)`` rotation labels 0–3."""
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"rotnet: needs square images, got {tuple(images.shape[-2:])}")
    turned = [torch.rot90(images, k, dims=(-2, -1)) for k in range(4)]
    labels = torch.arange(4, device=images.device).repeat_interleave(images.shape[0])
    return torch.cat(turned), labels


@TASKS.register("rotnet", kind="task", papers=("rotnet",))
class RotNet(Task):
    """Rotation prediction as a pretext task; test rotation accuracy and a linear probe on the features."""

    name = "rotnet"
    primary = "probe_acc"
    model_kinds = ("classify",)
    options = {"probe": True, "probe_stage": -2}

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        return {"model": config.model, "op": config.op, "in_chans": info.channels, "cfg": dict(config.cfg)}

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        return create_model(
            architecture["model"], num_classes=4, in_chans=architecture["in_chans"], op=architecture["op"], **cfg
        )

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        dataset = super().load(data, split, root, options)
        dataset.info.extra["probe"] = bool(options["probe"])
        dataset.info.extra["probe_stage"] = int(options["probe_stage"])
        return dataset

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        images, _ = batch  # (B, C, H, W); the class labels are not used
        turned, labels = rotations(images)  # (4B, C, H, W), (4B,)
        logits = net(turned)  # (4B, 4)
        loss = F.cross_entropy(logits.float(), labels)
        count, correct = labels.numel(), (logits.argmax(1) == labels).sum().item()
        return loss, {"seen": count, "loss_sum": loss.item() * count, "rot_acc": correct}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        loss, correct, seen = 0.0, 0, 0
        for images, _ in DataLoader(dataset, batch_size=128):
            turned, labels = rotations(images.to(device))
            logits = model(turned).float()
            loss += F.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += labels.numel()
        metrics = {"loss": loss / seen, "rot_acc": correct / seen}
        if dataset.info.extra.get("probe", True):
            metrics["probe_acc"] = linear_probe(model, dataset.info.name, stage=dataset.info.extra["probe_stage"])
        return metrics

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} (rotnet: 4 rotations), {architecture['in_chans']} input channels"
