"""Audio classification: waveforms ``(N, 1, T)`` in, class logits out; cross-entropy, test accuracy.

Any registered ``audio`` model on any audio dataset (``synth-sounds``, ``esc50``, ``speech-commands``); the
model's config takes the data's class count, sample rate and clip length (``samples``, for the families whose
pooling depends on it). Options: ``per_class`` — clips per class of ``synth-sounds`` (0: its default of 300);
``gain_db`` — the largest random gain (± dB) applied to each training clip, a simple augmentation (0: none).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from convzoo.core.validate import check_int, check_number
from convzoo.data.base import load_dataset
from convzoo.registry import MODELS, TASKS
from convzoo.train.evaluate import evaluate
from convzoo.train.task import Batch, Task

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Audio", "build_audio_model"]

DATA_FIELDS = ("classes", "sample_rate", "samples")


def build_audio_model(model: str, classes: int, sample_rate: int, samples: int, cfg: dict[str, Any]) -> nn.Module:
    """The registered audio model ``model`` for data of ``classes`` classes, ``sample_rate`` and clip length
    ``samples`` (each set where the model's config has that field), with the config overrides ``cfg``."""
    entry = MODELS.get(model)
    fields = {f.name for f in dataclasses.fields(entry.info.config)}
    data = {"classes": classes, "sample_rate": sample_rate, "samples": samples}
    overrides = {k: v for k, v in data.items() if k in fields}
    clash = sorted(set(cfg) & set(overrides))
    if clash:
        raise ValueError(f"train --task audio: {', '.join(clash)} come(s) from the data, not --cfg")
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()}  # JSON lists back to tuples
    unknown = sorted(set(cfg) - fields)
    if unknown:
        raise TypeError(
            f"{model}: unknown config field(s) {', '.join(unknown)}; its config has {', '.join(sorted(fields))}"
        )
    return entry.obj(**overrides, **cfg)


@TASKS.register("audio", kind="task", papers=("aclnet",))
class Audio(Task):
    """Audio classification: any registered audio model; cross-entropy, test accuracy."""

    name = "audio"
    primary = "acc"
    default_data = "synth-sounds"
    model_kinds = ("audio",)
    options = {"per_class": 0, "gain_db": 6.0}
    # AdamW: the audio nets here start from a raw waveform, where SGD at the image recipe's 0.05 diverges
    recipe = {"optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.01}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_int(options["per_class"], "per_class", "train --task audio", low=0)
        check_number(options["gain_db"], "gain_db", "train --task audio", low=0.0, low_open=False)
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        if options["per_class"]:
            if data != "synth-sounds":
                raise ValueError(f"train --task audio: per_class sizes synth-sounds only, not {data!r}")
            return load_dataset(data, split, root, per_class=options["per_class"])
        return load_dataset(data, split, root)

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        if info.num_classes != architecture["classes"]:
            raise ValueError(
                f"{info.name} has {info.num_classes} classes but the checkpoint's model has {architecture['classes']}"
            )
        if info.extra.get("sample_rate") != architecture["sample_rate"]:
            raise ValueError(
                f"{info.name} is sampled at {info.extra.get('sample_rate')} Hz but the checkpoint's model takes "
                f"{architecture['sample_rate']} Hz"
            )

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        if "sample_rate" not in info.extra:
            raise ValueError(f"train --task audio: {info.name!r} is not an audio dataset (no sample rate)")
        return {
            "model": config.model,
            "classes": info.num_classes,
            "sample_rate": info.extra["sample_rate"],
            "samples": info.image_size[-1],
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        return build_audio_model(
            architecture["model"],
            architecture["classes"],
            architecture["sample_rate"],
            architecture["samples"],
            architecture.get("cfg", {}),
        )

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        waves, labels = batch  # (B, 1, T), (B,)
        gain = config.options["gain_db"]
        if gain:
            db = (torch.rand(waves.shape[0], 1, 1, device=waves.device) * 2 - 1) * gain  # (B, 1, 1)
            waves = waves * torch.pow(10.0, db / 20)
        logits = net(waves)  # (B, classes)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
        count = labels.numel()
        correct = (logits.argmax(1) == labels).sum().item()
        return loss, {"seen": count, "loss_sum": loss.item() * count, "acc": correct}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        loss, accuracy = evaluate(model, dataset, batch_size=64, device=str(device))
        return {"loss": loss, "acc": accuracy}

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']}, {architecture['classes']} classes, {architecture['sample_rate']} Hz (audio)"
