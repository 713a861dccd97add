"""SparK (S81) pretraining and fine-tuning: masked modelling of a classifier's backbone, then classification from it.

``convzoo train --task spark --model resnet20 --data digits --out runs/spark`` pretrains: the model is
:class:`convzoo.models.spark.SparK` around the classifier (its sparse encoder, densifiers and light decoder), the
loss the per-patch normalised error on masked patches (options ``mask_ratio`` 0.6 and ``decoder_width``, 0 for
the deepest encoder width),
the test metric that loss on the test split under a fixed seeded mask per image (``test_loss``, lower is better).
Labels are not used.

``convzoo train --task spark-finetune --option init=runs/spark/checkpoint --model resnet20 --data digits``
fine-tunes: the classify task whose model starts from the pretrained encoder's weights (the head is fresh). The
checkpoint it writes rebuilds as a plain classifier (``convzoo eval`` does not need the pretraining checkpoint).
Recipe: AdamW, lr 2e-3, weight decay 0.04 for pretraining (the paper's LAMB with weight decay 0.04 at a digits
scale); fine-tuning keeps the classify recipe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.models import create_model
from convzoo.models.spark import SparK, random_active
from convzoo.registry import TASKS
from convzoo.train.checkpoint import build_from_checkpoint
from convzoo.train.task import Batch, Task, config_overrides
from convzoo.train.tasks.classify import Classify

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["SparkPretrain", "SparkFinetune", "masked_test_loss"]


@torch.no_grad()
def masked_test_loss(model: SparK, dataset: Dataset, device: torch.device | str = "cpu", seed: int = 0) -> float:
    """Mean SparK loss over ``dataset`` with one mask per image drawn from ``seed`` (the same masks every call)."""
    generator = torch.Generator().manual_seed(seed)
    total, seen = 0.0, 0
    for images, _ in DataLoader(dataset, batch_size=64):
        grid = (images.shape[-2] // model.downsample, images.shape[-1] // model.downsample)
        active = random_active(images.shape[0], grid, model.mask_ratio, generator=generator)
        total += model(images.to(device), active.to(device)).item() * images.shape[0]
        seen += images.shape[0]
    return total / max(seen, 1)


@TASKS.register("spark", kind="task", papers=("spark",))
class SparkPretrain(Task):
    """SparK masked-modelling pretraining of any registered classifier's backbone (labels unused)."""

    name = "spark"
    primary = "loss"
    higher_is_better = False
    model_kinds = ("classify",)
    options = {"mask_ratio": 0.6, "decoder_width": 0}
    recipe = {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.04}

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        if config.op is not None:
            raise ValueError(f"train: task 'spark' masks Conv2d layers only; it takes no op= (got {config.op!r})")
        return {
            "model": config.model,
            "num_classes": info.num_classes,
            "in_chans": info.channels,
            "cfg": dict(config.cfg),
            "mask_ratio": config.options["mask_ratio"],
            "decoder_width": config.options["decoder_width"],
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        backbone = create_model(
            architecture["model"], num_classes=architecture["num_classes"], in_chans=architecture["in_chans"], **cfg
        )
        width = architecture["decoder_width"] or None  # 0: the deepest encoder width
        return SparK(backbone, mask_ratio=float(architecture["mask_ratio"]), decoder_width=width)

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        images, _ = batch  # (B, C, H, W); labels unused
        loss = net(images)
        count = images.shape[0]
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        return {"loss": masked_test_loss(model, dataset, device)}

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} (spark pretraining, mask ratio {architecture['mask_ratio']})"


@TASKS.register("spark-finetune", kind="task", papers=("spark",))
class SparkFinetune(Classify):
    """Classification from a SparK-pretrained encoder (``--option init=<spark checkpoint>``)."""

    name = "spark-finetune"
    options = {**Classify.options, "init": ""}

    def __init__(self) -> None:
        self._init: dict[str, Tensor] | None = None

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        path = config.options["init"]
        if not path:
            raise ValueError("train: task 'spark-finetune' needs --option init=<folder of a spark checkpoint>")
        pretrained, checkpoint = build_from_checkpoint(path)
        if checkpoint.task != "spark":
            raise ValueError(f"train: init={path!r} is a {checkpoint.task!r} checkpoint, not a spark pretraining one")
        saved = checkpoint.architecture
        for key, value in (("model", config.model), ("in_chans", info.channels), ("cfg", dict(config.cfg))):
            if saved[key] != value:
                raise ValueError(f"train: init={path!r} was pretrained with {key}={saved[key]!r}, not {value!r}")
        self._init = pretrained.encoder_state_dict()
        return super().architecture(config, info)

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        model = super().create(architecture)
        if self._init is not None:  # training from the pretrained encoder; a rebuilt checkpoint loads its own
            result = model.load_state_dict(self._init, strict=False)
            fresh = [k for k in result.missing_keys if not k.startswith("head.")]
            if fresh or result.unexpected_keys:
                raise ValueError(f"train: the spark encoder does not fit: missing {fresh}, {result.unexpected_keys}")
        return model
