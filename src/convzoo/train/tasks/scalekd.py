"""ScaleKD (S89): cross-architecture feature distillation — a projector maps the student's last feature map into
the teacher's feature space, where it mimics the teacher's features in two views — between any two registered
classifiers.

Loss: ``CE(s, y) + kd · T²·KL(t ‖ s) + feature · [MSE(P(f_s), f_t) + MSE(D(P(f_s)), D(f_t))]`` where ``f_s`` and
``f_t`` are the students's and the teacher's last feature maps, ``P`` the projector (1×1 conv to the teacher's
width, bilinear resize to its resolution, LayerNorm over channels; a convolutional stand-in for the paper's
cross-attention projector) and ``D`` the paper's alternative view: the 2-D spectrum of each channel with its
direct (mean) component removed, so the mimicking is not dominated by the channel means. The teacher is a
``classify`` checkpoint (``--option teacher=PATH``) of any registered architecture; the projector is trained with
the student and saved with it (the checkpoint's model is :class:`ScaleKDStudent`, whose forward is the student's).
Departure: the paper's teacher parameter perception (a teacher-initialised proxy path) is not built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.models import create_model
from convzoo.registry import TASKS
from convzoo.train.task import Batch, Task, config_overrides
from convzoo.train.tasks.distill import check_teacher, distill_kl, load_teacher

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Projector", "ScaleKD", "ScaleKDStudent", "without_direct_component"]


def without_direct_component(features: Tensor) -> Tensor:
    """``(N, C, H, W)`` features → the real and imaginary parts ``(N, C, H, W, 2)`` of each channel's orthonormal
    2-D FFT with the direct (zero-frequency) term set to zero."""
    spectrum = torch.fft.fft2(features.float(), norm="ortho")
    spectrum[..., 0, 0] = 0
    return torch.view_as_real(spectrum)


class Projector(nn.Module):
    """``(N, C_s, H_s, W_s) → (N, C_t, H_t, W_t)``: 1×1 conv, bilinear resize, LayerNorm over channels."""

    def __init__(self, student_channels: int, teacher_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.size = tuple(teacher_shape[1:])
        self.conv = nn.Conv2d(student_channels, teacher_shape[0], 1)
        self.norm = nn.LayerNorm(teacher_shape[0])

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (N, C_t, H_t, W_t)


class ScaleKDStudent(nn.Module):
    """The student classifier with its projector; ``forward`` is the student's, ``features`` returns both the
    logits and the projected feature map."""

    def __init__(self, student: nn.Module, student_channels: int, teacher_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.student = student
        self.projector = Projector(student_channels, teacher_shape)

    def forward(self, x: Tensor) -> Tensor:
        return self.student(x)

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feature_map = self.student.forward_features(x)  # (N, C_s, H_s, W_s)
        return self.student.forward_head(feature_map), self.projector(feature_map)


def _feature_shape(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    was_training = model.training
    with torch.no_grad():
        shape = model.eval().forward_features(torch.zeros(1, *input_shape)).shape[1:]
    model.train(was_training)
    if len(shape) != 3:
        raise ValueError(f"scalekd: needs a (C, H, W) feature map from forward_features, got {tuple(shape)}")
    return tuple(int(s) for s in shape)


@TASKS.register("scalekd", kind="task", papers=("scalekd",))
class ScaleKD(Task):
    """Cross-architecture feature distillation: projector + spatial and DC-free frequency feature mimicking."""

    name = "scalekd"
    primary = "acc"
    model_kinds = ("classify",)
    options = {"teacher": "", "feature": 1.0, "kd": 1.0, "temperature": 1.0}
    recipe = {"optimizer": "adamw", "lr": 2e-3}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_teacher(options, "train --task scalekd")
        if options["feature"] < 0 or options["kd"] < 0 or not options["temperature"] > 0:
            raise ValueError(
                f"train --task scalekd: feature and kd must be ≥ 0 and temperature > 0, got {options['feature']}, "
                f"{options['kd']}, {options['temperature']}"
            )
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        dataset = super().load(data, split, root, options)
        dataset.info.extra["teacher"] = options["teacher"]
        return dataset

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        teacher = load_teacher(config.options["teacher"], torch.device("cpu"))
        input_shape = (info.channels, *info.image_size)
        return {
            "model": config.model,
            "op": config.op,
            "num_classes": info.num_classes,
            "in_chans": info.channels,
            "size": list(info.image_size),
            "teacher": str(config.options["teacher"]),
            "teacher_shape": list(_feature_shape(teacher, input_shape)),
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        student = create_model(
            architecture["model"],
            num_classes=architecture["num_classes"],
            in_chans=architecture["in_chans"],
            op=architecture.get("op"),
            **cfg,
        )
        channels = _feature_shape(student, (architecture["in_chans"], *architecture["size"]))[0]
        return ScaleKDStudent(student, channels, tuple(architecture["teacher_shape"]))

    def losses(self, model: nn.Module, images: Tensor, labels: Tensor, options: dict[str, Any]) -> dict[str, Tensor]:
        """The loss terms of one batch: ``ce``, ``kd``, ``spatial`` and ``frequency``."""
        teacher = load_teacher(options["teacher"], images.device)
        with torch.no_grad():
            teacher_map = teacher.forward_features(images)  # (B, C_t, H_t, W_t)
            teacher_logits = teacher.forward_head(teacher_map)
        logits, projected = model.features(images)
        return {
            "ce": F.cross_entropy(logits.float(), labels),
            "kd": distill_kl(logits, teacher_logits, options["temperature"]),
            "spatial": F.mse_loss(projected.float(), teacher_map.float()),
            "frequency": F.mse_loss(without_direct_component(projected), without_direct_component(teacher_map)),
        }

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        images, labels = batch
        model = net.module if hasattr(net, "module") else net
        terms = self.losses(model, images, labels, config.options)
        options = config.options
        loss = terms["ce"] + options["kd"] * terms["kd"] + options["feature"] * (terms["spatial"] + terms["frequency"])
        count = labels.numel()
        sums = {"seen": count, "loss_sum": loss.item() * count}
        sums.update({k: v.item() * count for k, v in terms.items()})
        return loss, sums

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        options = {"teacher": dataset.info.extra["teacher"], "temperature": 1.0}
        sums = {"loss": 0.0, "acc": 0.0, "spatial": 0.0, "frequency": 0.0}
        seen = 0
        for images, labels in DataLoader(dataset, batch_size=256):
            images, labels = images.to(device), labels.to(device)
            terms = self.losses(model, images, labels, options)
            count = labels.numel()
            sums["loss"] += terms["ce"].item() * count
            sums["acc"] += (model(images).argmax(1) == labels).sum().item()
            sums["spatial"] += terms["spatial"].item() * count
            sums["frequency"] += terms["frequency"].item() * count
            seen += count
        return {k: v / max(seen, 1) for k, v in sums.items()}

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} + projector, feature-distilled from {architecture['teacher']} (scalekd)"
