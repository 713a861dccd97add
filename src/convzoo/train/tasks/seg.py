"""Semantic segmentation: per-pixel cross-entropy that skips the ignore label; mean IoU and pixel accuracy.

Any registered ``seg`` model (FCN, DCFAM, ...) on any backbone (``--cfg backbone=NAME``) with any op (``--op``),
on a segmentation set (``shapes``, ``voc``, ``ade20k``). The metrics are torchmetrics' ``MulticlassJaccardIndex``
(mean over the classes, IoU from the confusion matrix accumulated over the whole test split, so a class absent
from one image is not scored 0 there) and ``MulticlassAccuracy`` (micro: the fraction of labelled pixels right);
pixels labelled ``ignore_index`` (option, default 255) count in neither. The trainer's ``label_smoothing`` is not
applied: FCN and its successors train with the plain cross-entropy.

Options: ``augment`` — ``none`` (default) or ``dihedral``: each training image and its mask turned by a random
symmetry of the square (:func:`convzoo.data.augment.random_dihedral`), for data whose classes ignore orientation,
as the ``shapes`` set's do; ``train_length`` — the number of training images a generated set draws (0: its
default; ``shapes`` has 768); ``size`` — the image side of both splits (generated sets are drawn at it, folder
sets resized to it; 0: the set's default). ``shapes``' default 48² is too coarse for a stride-8 decoder: the true
masks area-averaged over 8×8 cells and resampled bilinearly, as FCN-8s's last upsampling does, score only
0.77 mIoU on its test split at 48², 0.85 at 64² and 0.92 at 96².
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_choice, check_int
from convzoo.data.augment import DIHEDRAL_CHOICES, random_dihedral
from convzoo.data.base import load_dataset
from convzoo.models._dense import create_dense
from convzoo.registry import DATASETS, TASKS
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Segmentation", "score_segmentation"]

_LOADER_KEYWORDS = {"train_length": "length", "size": "size"}  # task option → the dataset loader's keyword


@torch.no_grad()
def score_segmentation(
    model: nn.Module, dataset: Dataset, num_classes: int, ignore_index: int = 255, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Cross-entropy, mean IoU and pixel accuracy of ``model`` on ``dataset``'s ``(image, mask)`` pairs."""
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

    iou = MulticlassJaccardIndex(num_classes, average="macro", ignore_index=ignore_index).to(device)
    accuracy = MulticlassAccuracy(num_classes, average="micro", ignore_index=ignore_index).to(device)
    loss_sum, pixels = 0.0, 0
    for images, masks in DataLoader(dataset, batch_size=32):
        images, masks = images.to(device), masks.to(device)  # (b, C, H, W), (b, H, W)
        logits = model(images).float()  # (b, K, H, W)
        labelled = int((masks != ignore_index).sum())
        if labelled:
            loss_sum += F.cross_entropy(logits, masks, ignore_index=ignore_index, reduction="sum").item()
            pixels += labelled
        predictions = logits.argmax(1)  # (b, H, W)
        iou.update(predictions, masks)
        accuracy.update(predictions, masks)
    return {"loss": loss_sum / max(pixels, 1), "miou": float(iou.compute()), "pixel_acc": float(accuracy.compute())}


@TASKS.register("seg", kind="task", papers=("fcn",))
class Segmentation(Task):
    """Semantic segmentation: any registered seg model, any backbone and op; cross-entropy, mIoU."""

    name = "seg"
    primary = "miou"
    default_data = "shapes"
    model_kinds = ("seg",)
    options = {"ignore_index": 255, "augment": "none", "train_length": 0, "size": 0}
    recipe = {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 1e-4}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_int(options["ignore_index"], "ignore_index", "train --task seg", low=0)
        check_choice(options["augment"], DIHEDRAL_CHOICES, "augment option", "train --task seg")
        check_int(options["train_length"], "train_length option", "train --task seg", low=0)
        check_int(options["size"], "size option", "train --task seg", low=0)
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        given = {  # train_length draws more training images only; size applies to both splits
            option: options[option]
            for option in _LOADER_KEYWORDS
            if options.get(option) and (split == "train" or option != "train_length")
        }
        if given:
            parameters = inspect.signature(DATASETS.get(data).obj).parameters
            for option in given:
                if _LOADER_KEYWORDS[option] not in parameters:
                    raise ValueError(f"train --task seg: {data!r} is read from disk and takes no {option} option")
            dataset = load_dataset(data, split, root, **{_LOADER_KEYWORDS[option]: v for option, v in given.items()})
        else:
            dataset = super().load(data, split, root, options)
        if "ignore_index" not in getattr(getattr(dataset, "info", None), "extra", {}):
            raise ValueError(f"train --task seg: {data!r} is not a segmentation set (shapes, voc, ade20k)")
        dataset.ignore_index = options["ignore_index"]
        return dataset

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        return {
            "model": config.model,
            "op": config.op,
            "num_classes": info.num_classes,
            "in_chans": info.channels,
            "ignore_index": config.options["ignore_index"],
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        return create_dense(
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
        images, masks = batch  # (B, C, H, W), (B, H, W)
        if config.options.get("augment", "none") == "dihedral":
            images, masks = random_dihedral(images, masks)
        logits = net(images)  # (B, K, H, W)
        ignore = config.options["ignore_index"]
        loss = F.cross_entropy(logits.float(), masks, ignore_index=ignore)
        labelled = masks != ignore
        count = images.shape[0]
        correct = ((logits.argmax(1) == masks) & labelled).sum().item() / max(int(labelled.sum()), 1)
        return loss, {"seen": count, "loss_sum": loss.item() * count, "pixel_acc": correct * count}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        ignore = getattr(dataset, "ignore_index", dataset.info.extra.get("ignore_index", 255))
        return score_segmentation(model, dataset, dataset.info.num_classes, ignore, device)

    def describe(self, architecture: dict[str, Any]) -> str:
        op = f", op={architecture['op']}" if architecture.get("op") else ""
        backbone = architecture.get("cfg", {}).get("backbone")
        on = f" on {backbone}" if backbone else ""
        return f"{architecture['model']}{on}{op}, {architecture['num_classes']} classes (seg)"
