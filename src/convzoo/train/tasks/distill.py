"""Function-matching distillation (S102, "a good teacher is patient and consistent"): the student matches the
teacher's whole function on aggressively augmented inputs, the teacher seeing exactly the student's view.

Each batch is augmented once — a random shifted crop (zero padding ``pad``, the 32×32 stand-in for the paper's
inception crop) and mixup of the batch with itself reversed at ``λ ~ Beta(mixup, mixup)`` — and that one view
goes to both networks; the loss is ``T² · KL(softmax(t/T) ‖ softmax(s/T))`` with no label term (the labels are
not used in training). The paper's other half, patience, is a long schedule: ``--epochs``. The teacher is a
``classify`` checkpoint (option ``teacher=PATH``) on the same data. Test metrics: the student's accuracy and
cross-entropy (``loss``) beside the teacher's (``teacher_acc``, ``teacher_loss``) and the mean KL between them
on clean test images (``kl``): the student's loss falls toward the teacher's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_int
from convzoo.data.augment import random_crop
from convzoo.models import create_model
from convzoo.registry import TASKS
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["FunctionMatching", "distill_kl", "load_teacher", "shared_view"]


def distill_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """``T² · mean_i KL(softmax(t_i/T) ‖ softmax(s_i/T))`` for ``(B, K)`` logits."""
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    student = F.log_softmax(student_logits.float() / temperature, dim=1)
    return temperature**2 * F.kl_div(student, teacher, log_target=True, reduction="batchmean")


def shared_view(images: Tensor, pad: int, mixup: float) -> Tensor:
    """One augmented view of ``(B, C, H, W)`` images (global torch RNG): a random crop of the ``pad``-padded batch
    (one offset per image), then mixup with the batch reversed at one ``λ ~ Beta(mixup, mixup)``."""
    images = random_crop(images, pad)  # (B, C, H, W)
    if mixup > 0:
        lam = torch.distributions.Beta(mixup, mixup).sample().item()
        images = lam * images + (1 - lam) * images.flip(0)
    return images


_TEACHERS: dict[tuple[str, str], nn.Module] = {}


def load_teacher(path: str, device: torch.device) -> nn.Module:
    """The frozen classifier of checkpoint ``path`` on ``device`` (loaded once per process)."""
    from convzoo.train.checkpoint import build_from_checkpoint

    key = (str(Path(path).resolve()), str(device))
    if key not in _TEACHERS:
        model, checkpoint = build_from_checkpoint(path)
        if checkpoint.task != "classify":
            raise ValueError(f"distillation: the teacher {path!r} is a {checkpoint.task!r} checkpoint, not classify")
        for p in model.parameters():
            p.requires_grad_(False)
        _TEACHERS[key] = model.to(device).eval()
    return _TEACHERS[key]


def check_teacher(options: dict[str, Any], owner: str) -> None:
    if not options.get("teacher"):
        raise ValueError(f"{owner}: needs --option teacher=PATH, a classify checkpoint on the same data")
    if not Path(options["teacher"]).exists():
        raise FileNotFoundError(f"{owner}: no teacher checkpoint at {options['teacher']!r}")


@TASKS.register("distill", kind="task", papers=("kd-function-matching",))
class FunctionMatching(Task):
    """Patient and consistent distillation: teacher and student see the same augmented view; KL loss."""

    name = "distill"
    primary = "acc"
    model_kinds = ("classify",)
    options = {"teacher": "", "temperature": 1.0, "mixup": 1.0, "pad": 4}
    recipe = {"optimizer": "adamw", "lr": 2e-3}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_teacher(options, "train --task distill")
        check_int(options["pad"], "pad", "train --task distill", low=0)
        if not options["temperature"] > 0 or options["mixup"] < 0:
            raise ValueError(
                f"train --task distill: temperature must be > 0 and mixup ≥ 0, got {options['temperature']}, "
                f"{options['mixup']}"
            )
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        dataset = super().load(data, split, root, options)
        dataset.info.extra["teacher"] = options["teacher"]
        return dataset

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        return {
            "model": config.model,
            "op": config.op,
            "num_classes": info.num_classes,
            "in_chans": info.channels,
            "teacher": str(config.options["teacher"]),
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

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        images, _ = batch  # (B, C, H, W); labels unused
        options = config.options
        view = shared_view(images, options["pad"], options["mixup"])  # the one view both networks see
        teacher = load_teacher(options["teacher"], images.device)
        with torch.no_grad():
            teacher_logits = teacher(view)
        loss = distill_kl(net(view), teacher_logits, options["temperature"])
        count = images.shape[0]
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        teacher = load_teacher(dataset.info.extra["teacher"], device)
        sums = {"loss": 0.0, "acc": 0.0, "teacher_loss": 0.0, "teacher_acc": 0.0, "kl": 0.0}
        seen = 0
        for images, labels in DataLoader(dataset, batch_size=256):
            images, labels = images.to(device), labels.to(device)
            student, reference = model(images).float(), teacher(images).float()
            count = labels.numel()
            sums["loss"] += F.cross_entropy(student, labels, reduction="sum").item()
            sums["teacher_loss"] += F.cross_entropy(reference, labels, reduction="sum").item()
            sums["acc"] += (student.argmax(1) == labels).sum().item()
            sums["teacher_acc"] += (reference.argmax(1) == labels).sum().item()
            sums["kl"] += distill_kl(student, reference).item() * count
            seen += count
        return {k: v / max(seen, 1) for k, v in sums.items()}

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} distilled from {architecture['teacher']}"
