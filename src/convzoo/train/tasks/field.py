"""Physical fields: next-frame prediction of a simulated field (the ``wave`` set, S13); MSE loss, relative error.

Any registered ``field`` model maps the latest frames ``(N, 2, H, W)`` to the next ``(N, 1, H, W)``. The test
metrics are the mean squared error (``mse``, torchmetrics' ``MeanSquaredError``) and the relative L2 error
``rel_l2 = ‖pred − true‖ / ‖true‖`` over the whole test split (the primary metric, lower is better).
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

__all__ = ["Field", "score_field"]


@torch.no_grad()
def score_field(model: nn.Module, dataset: Dataset, device: torch.device | str = "cpu") -> dict[str, float]:
    """MSE and relative L2 error of ``model`` over ``dataset``'s ``(frames, next)`` pairs."""
    from torchmetrics import MeanSquaredError

    mse = MeanSquaredError().to(device)
    error, norm = 0.0, 0.0
    for frames, target in DataLoader(dataset, batch_size=64):
        frames, target = frames.to(device), target.to(device)  # (b, 2, H, W), (b, 1, H, W)
        predicted = model(frames).float().contiguous()
        mse.update(predicted, target)
        error += float(((predicted - target) ** 2).sum())
        norm += float((target**2).sum())
    mean = float(mse.compute())
    return {"loss": mean, "mse": mean, "rel_l2": (error / max(norm, 1e-30)) ** 0.5}


@TASKS.register("field", kind="task", papers=("apriori-compression",))
class Field(Task):
    """Next-frame prediction of a simulated field: any registered field model and op; MSE, relative L2 error."""

    name = "field"
    primary = "rel_l2"
    default_data = "wave"
    higher_is_better = False
    model_kinds = ("field",)
    unit = "frame pairs"
    recipe = {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.0}

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        dataset = super().load(data, split, root, options)
        if getattr(getattr(dataset, "info", None), "name", None) != "wave":
            raise ValueError(f"train --task field: {data!r} is not a field set (wave)")
        return dataset

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        return {"model": config.model, "op": config.op, "in_chans": info.channels, "cfg": dict(config.cfg)}

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        return create_dense(architecture["model"], in_chans=architecture["in_chans"], op=architecture.get("op"), **cfg)

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        frames, target = batch  # (B, 2, H, W), (B, 1, H, W)
        loss = F.mse_loss(net(frames).float(), target)
        count = frames.shape[0]
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        return score_field(model, dataset, device)
