"""Stereo disparity: smooth-L1 on the pixels of known disparity; end-point error (EPE) and the 3-pixel error.

Any registered ``disparity`` model (EDNet) on a stereo set (``random-dots``, ``stereo-folder``): the model takes
``(left, right)`` and returns the left view's disparity ``(N, H, W)`` in pixels. A pixel counts where its ground
truth is finite and below the data's ``max_disparity`` (the model's range), as the stereo benchmarks score it.
``epe`` is the mean absolute error over those pixels (torchmetrics' ``MeanAbsoluteError`` on them), ``d3`` the
fraction off by more than 3 pixels. The loss is smooth-L1 (β = 1), the usual one of disparity networks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.models._dense import create_dense
from convzoo.registry import TASKS
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Disparity", "score_disparity", "valid_pixels"]


def valid_pixels(disparity: Tensor, max_disparity: float) -> Tensor:
    """Pixels of known ground truth inside the model's range: finite and in ``[0, max_disparity)``."""
    return torch.isfinite(disparity) & (disparity >= 0) & (disparity < max_disparity)


@torch.no_grad()
def score_disparity(
    model: nn.Module, dataset: Dataset, max_disparity: float, device: torch.device | str = "cpu"
) -> dict[str, float]:
    """Smooth-L1 loss, end-point error and 3-pixel error rate of ``model`` over ``dataset``'s valid pixels."""
    from torchmetrics import MeanAbsoluteError

    epe = MeanAbsoluteError().to(device)
    loss_sum, wrong, pixels = 0.0, 0, 0
    for left, right, truth in DataLoader(dataset, batch_size=16):
        left, right, truth = left.to(device), right.to(device), truth.to(device)  # (b, C, H, W) ×2, (b, H, W)
        predicted = model(left, right).float()  # (b, H, W)
        valid = valid_pixels(truth, max_disparity)
        if not valid.any():
            continue
        p, t = predicted[valid], truth[valid]
        epe.update(p, t)
        loss_sum += F.smooth_l1_loss(p, t, reduction="sum").item()
        wrong += int(((p - t).abs() > 3).sum())
        pixels += int(valid.sum())
    if pixels == 0:
        raise ValueError("disparity: the test split has no pixel of known disparity below max_disparity")
    return {"loss": loss_sum / pixels, "epe": float(epe.compute()), "d3": wrong / pixels}


@TASKS.register("disparity", kind="task", papers=("ednet",))
class Disparity(Task):
    """Stereo disparity: any registered disparity model; smooth-L1, end-point error."""

    name = "disparity"
    primary = "epe"
    default_data = "random-dots"
    higher_is_better = False
    model_kinds = ("disparity",)
    unit = "stereo pairs"
    recipe = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 1e-4}

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        dataset = super().load(data, split, root, options)
        if "max_disparity" not in getattr(getattr(dataset, "info", None), "extra", {}):
            raise ValueError(f"train --task disparity: {data!r} is not a stereo set (random-dots, stereo-folder)")
        if split == "train":  # step() is given no data description: the range is kept from the training split
            self.max_disparity = float(dataset.info.extra["max_disparity"])
        return dataset

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        return {
            "model": config.model,
            "op": config.op,
            "in_chans": info.channels,
            "max_disparity": info.extra["max_disparity"],
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        return create_dense(
            architecture["model"],
            in_chans=architecture["in_chans"],
            max_disparity=architecture["max_disparity"],
            op=architecture.get("op"),
            **cfg,
        )

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        if info.extra.get("max_disparity") != architecture["max_disparity"]:
            raise ValueError(
                f"{info.name} has disparities below {info.extra.get('max_disparity')} but the checkpoint's model "
                f"covers {architecture['max_disparity']}"
            )

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        left, right, truth = batch  # (B, C, H, W) ×2, (B, H, W)
        predicted = net(left, right).float()  # (B, H, W)
        valid = valid_pixels(truth, getattr(self, "max_disparity", torch.inf))
        loss = F.smooth_l1_loss(predicted[valid], truth[valid])
        count = left.shape[0]
        epe = (predicted[valid] - truth[valid]).abs().mean().item() if valid.any() else 0.0
        return loss, {"seen": count, "loss_sum": loss.item() * count, "epe": epe * count}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        return score_disparity(model, dataset, dataset.info.extra["max_disparity"], device)

    def describe(self, architecture: dict[str, Any]) -> str:
        op = f", op={architecture['op']}" if architecture.get("op") else ""
        return f"{architecture['model']}{op}, disparities < {architecture['max_disparity']} (disparity)"
