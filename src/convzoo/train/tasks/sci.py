"""Video snapshot compressive imaging (S104): reconstruct ``T`` frames of a moving digit from one coded snapshot.

The data are seeded moving-digit clips (:func:`convzoo.data.moving_digits.moving_digits`, from the ``digits`` split
asked for) of ``frames`` frames of ``size``² pixels in [0, 1], coded by one fixed set of random binary masks
(:func:`convzoo.train.sci.random_masks`, seed ``mask_seed``, density ½, as a coded-aperture camera has one) and
summed into the snapshot ``y = Σ_t M_t ⊙ x_t``. A batch is ``(y, masks, x)``: ``(B, H, W)``, ``(B, T, H, W)``,
``(B, T, H, W)``. Any registered ``sci`` model maps ``(y, masks)`` to ``(recon (B, S, T, H, W), log_var (B, T, H,
W))``; its loss is :func:`convzoo.models.sci_unfolding.unfolding_loss` (the variance likelihood of the first stage
plus the MSE of every later one).

The test metric is the PSNR of the last stage's reconstruction (clamped to [0, 1]), per frame and averaged over the
test clips' frames (``psnr``, the primary metric, higher is better), beside the least-norm inverse
``Φᵀ((ΦΦᵀ)⁻¹y)`` that the unfolding starts from (``psnr_least_norm``) and the gain over it (``psnr_gain``).

Options: ``frames`` (8), ``size`` (32), ``clips`` (training clips, 512), ``test_clips`` (64), ``mask_seed`` (0).
The training clips are drawn with seed 0 and the test clips with seed 1 (different digits of the other split).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_int
from convzoo.data.base import DatasetInfo
from convzoo.data.moving_digits import moving_digits
from convzoo.models import create_model
from convzoo.models.sci_unfolding import unfolding_loss
from convzoo.registry import TASKS
from convzoo.train.sci import least_norm, random_masks, snapshot, video_psnr
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["SnapshotClips", "SnapshotImaging", "score_sci"]

SPLIT_SEED = {"train": 0, "test": 1}


class SnapshotClips(Dataset):
    """Moving-digit clips ``x`` ``(N, T, H, W)``, one shared ``(T, H, W)`` mask set and the snapshots ``y``
    ``(N, H, W)``; item ``i`` is ``(y_i, masks, x_i)``."""

    def __init__(self, videos: Tensor, masks: Tensor, info: DatasetInfo) -> None:
        self.videos, self.masks, self.info = videos, masks, info
        self.snapshots = snapshot(videos, masks)  # (N, H, W)

    def __len__(self) -> int:
        return self.videos.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, Tensor]:
        return self.snapshots[index], self.masks, self.videos[index]


@torch.no_grad()
def score_sci(model: nn.Module, dataset: SnapshotClips, device: torch.device | str = "cpu") -> dict[str, float]:
    """Loss, PSNR of the last stage and of the least-norm start (per frame, averaged over frames) on ``dataset``."""
    sums = {"loss": 0.0, "psnr": 0.0, "psnr_least_norm": 0.0}
    frames = 0
    for y, masks, x in DataLoader(dataset, batch_size=16):
        y, masks, x = y.to(device), masks.to(device), x.to(device)  # (b, H, W), (b, T, H, W), (b, T, H, W)
        recon, log_var = model(y, masks)  # (b, S, T, H, W), (b, T, H, W)
        recon, log_var = recon.float(), log_var.float()
        count = x.shape[0] * x.shape[1]
        sums["loss"] += unfolding_loss(recon, log_var, x).item() * x.shape[0]
        sums["psnr"] += video_psnr(recon[:, -1].clamp(0, 1), x).sum().item()
        sums["psnr_least_norm"] += video_psnr(least_norm(y, masks).clamp(0, 1), x).sum().item()
        frames += count
    clips = len(dataset)
    metrics = {
        "loss": sums["loss"] / max(clips, 1),
        "psnr": sums["psnr"] / max(frames, 1),
        "psnr_least_norm": sums["psnr_least_norm"] / max(frames, 1),
    }
    metrics["psnr_gain"] = metrics["psnr"] - metrics["psnr_least_norm"]
    return metrics


@TASKS.register("sci", kind="task", papers=("video-sci",))
class SnapshotImaging(Task):
    """Video snapshot compressive imaging on moving digits: any registered sci model; PSNR of the reconstruction."""

    name = "sci"
    primary = "psnr"
    higher_is_better = True
    model_kinds = ("sci",)
    default_data = "digits"
    unit = "clips"
    options = {"frames": 8, "size": 32, "clips": 512, "test_clips": 64, "mask_seed": 0}
    # Adam without decay, as the unfolding networks for SCI train (their 1e-4; the short CPU budgets take more)
    recipe = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        for key in ("frames", "size", "clips", "test_clips"):
            check_int(options[key], key, "train --task sci")
        check_int(options["mask_seed"], "mask_seed", "train --task sci", low=0)
        if options["size"] < 16 or options["size"] % 2:
            raise ValueError(
                f"train --task sci: size must be an even number ≥ 16 (the digit side), got {options['size']}"
            )
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        if data != "digits":
            raise ValueError(f"train --task sci: the clips are made from the digits set, not {data!r}")
        frames, size = options["frames"], options["size"]
        clips = options["clips"] if split == "train" else options["test_clips"]
        videos, _ = moving_digits(clips, frames=frames, size=size, digit=16, split=split, seed=SPLIT_SEED[split])
        masks = random_masks(frames, size, size, seed=options["mask_seed"])
        info = DatasetInfo(
            name="digits",
            split=split,
            num_classes=10,
            channels=frames,
            image_size=(size, size),
            class_names=(),
            mean=(0.0,),
            std=(1.0,),
            root=root,
            extra={"frames": frames, "size": size, "clips": clips, "mask_seed": options["mask_seed"]},
        )
        return SnapshotClips(videos, masks, info)

    def examples(self, dataset: Dataset) -> int:
        return len(dataset)

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        return {
            "model": config.model,
            "frames": info.extra["frames"],
            "size": info.extra["size"],
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        return create_model(architecture["model"], frames=architecture["frames"], size=architecture["size"], **cfg)

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        frames = info.extra.get("frames")
        if frames != architecture["frames"]:
            raise ValueError(
                f"{info.name} clips have {frames} frames but the checkpoint's model takes {architecture['frames']}"
            )

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        y, masks, x = batch  # (B, H, W), (B, T, H, W), (B, T, H, W)
        recon, log_var = net(y, masks)  # (B, S, T, H, W), (B, T, H, W)
        loss = unfolding_loss(recon.float(), log_var.float(), x)
        count = y.shape[0]
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        return score_sci(model, dataset, device)

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} (sci), {architecture['frames']} frames of {architecture['size']}²"
