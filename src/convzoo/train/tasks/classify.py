"""Image classification: cross-entropy with label smoothing (S3), accuracy on the test split.

Options: ``augment`` — ``none`` (default) or ``crop-flip``, the ResNet paper's CIFAR augmentation applied to each
training batch (:func:`convzoo.data.augment.random_crop_flip`: a random crop of the image padded by ``pad`` pixels,
mirrored with probability ½); ``pad`` — its padding (default 4).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from convzoo.core.validate import check_choice, check_int
from convzoo.data.augment import random_crop_flip
from convzoo.models import create_model
from convzoo.registry import TASKS
from convzoo.train.evaluate import evaluate
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Classify"]


@TASKS.register("classify", kind="task")
class Classify(Task):
    """Image classification: any registered classifier, any op; cross-entropy, test accuracy."""

    name = "classify"
    primary = "acc"
    model_kinds = ("classify",)
    options = {"augment": "none", "pad": 4}
    augmentations = ("none", "crop-flip")

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_choice(options["augment"], self.augmentations, "augment option", f"task {self.name!r}")
        check_int(options["pad"], "pad option", f"task {self.name!r}", low=0)
        return options

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        return {
            "model": config.model,
            "op": config.op,
            "num_classes": info.num_classes,
            "in_chans": info.channels,
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        return create_model(
            architecture["model"],
            num_classes=architecture["num_classes"],
            in_chans=architecture["in_chans"],
            op=architecture.get("op"),
            **cfg,
        )

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        classes = architecture["num_classes"]
        if info.num_classes != classes:
            raise ValueError(f"{info.name} has {info.num_classes} classes but the checkpoint's model has {classes}")

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        images, labels = batch  # (B, C, H, W), (B,)
        if config.options.get("augment", "none") == "crop-flip":
            images = random_crop_flip(images, config.options.get("pad", 4))
        logits = net(images)  # (B, classes)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
        count = labels.numel()
        correct = (logits.argmax(1) == labels).sum().item()
        return loss, {"seen": count, "loss_sum": loss.item() * count, "acc": correct}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        loss, accuracy = evaluate(model, dataset, device=str(device))
        return {"loss": loss, "acc": accuracy}

    def describe(self, architecture: dict[str, Any]) -> str:
        op = f", op={architecture['op']}" if architecture.get("op") else ""
        return (
            f"{architecture['model']}{op}, {architecture['num_classes']} classes, "
            f"{architecture['in_chans']} input channels"
        )
