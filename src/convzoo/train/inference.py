"""A trained checkpoint at work: its test accuracy (``convzoo eval``) and its top classes for image files
(``convzoo predict``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from convzoo.core.validate import check_int
from convzoo.train.checkpoint import build_from_checkpoint
from convzoo.train.task import get_task

__all__ = ["CheckpointEval", "Prediction", "evaluate_checkpoint", "predict"]


@dataclass(frozen=True)
class CheckpointEval:
    """Test metrics of a checkpoint (``model`` is its one-line description) on ``images`` test examples:
    ``metrics`` as its task reports them (``loss`` and ``acc`` for a classifier, ``psnr`` and ``ssim`` for
    super-resolution, ...); ``accuracy`` and ``loss`` are NaN where the task has none."""

    model: str
    data: str
    accuracy: float
    loss: float
    images: int
    task: str = "classify"
    metrics: dict[str, float] = field(default_factory=dict)
    unit: str = "images"  # what ``images`` counts for the task (test nodes, test users, ...)


@dataclass(frozen=True)
class Prediction:
    """The ``top`` classes of one image as ``(class name, probability)``, most probable first."""

    image: str
    top: tuple[tuple[str, float], ...]


def evaluate_checkpoint(
    checkpoint: str | Path, data: str | None = None, root: str | Path | None = None
) -> CheckpointEval:
    """Test metrics of the checkpoint folder ``checkpoint`` on the test split of ``data`` (default: the dataset it
    was trained on, read from ``root``, default the folder it was trained from), scored by the checkpoint's task
    with the task options it was trained with; data the model cannot be scored on (other class counts) is
    refused."""
    model, saved = build_from_checkpoint(checkpoint)
    recorded = saved.meta.get("data", {})
    data = data or recorded.get("name")
    root = root if root is not None else recorded.get("root")
    if data is None:
        raise ValueError(f"evaluate_checkpoint: {str(checkpoint)!r} names no dataset; pass data= (--data)")
    task = get_task(saved.task)
    options = saved.meta.get("train_config", {}).get("options", {})
    test = task.load(data, "test", None if root is None else str(root), task.resolve_options(options))
    task.check_data(saved.architecture, test.info)
    metrics = task.evaluate(model, test, torch.device("cpu"))
    return CheckpointEval(
        saved.describe(),
        data,
        metrics.get("acc", math.nan),
        metrics.get("loss", math.nan),
        task.examples(test),
        task.name,
        metrics,
        task.unit,
    )


def predict(checkpoint: str | Path, images: Sequence[str | Path], top_k: int = 5) -> list[Prediction]:
    """The ``top_k`` most probable classes of each image file, read and standardised as the checkpoint's training
    images were (size, channels, mean and std recorded in it)."""
    from convzoo.data.imagefolder import read_image

    check_int(top_k, "top_k", "predict")
    model, saved = build_from_checkpoint(checkpoint)
    if saved.task != "classify":
        raise ValueError(
            f"predict: {str(checkpoint)!r} is a {saved.task} checkpoint; predict names the classes of a classifier"
            + {"sr": " (upscale an image with convzoo upscale)", "seg": " (segment an image with convzoo segment)"}.get(
                saved.task, ""
            )
        )
    data = saved.meta.get("data", {})
    if not data.get("image_size"):
        raise ValueError(f"{checkpoint} records no input image size; it was not trained on an image dataset")
    size, channels = data["image_size"][0], data["channels"]
    mean = torch.tensor(data["mean"]).view(-1, 1, 1)  # (C, 1, 1)
    std = torch.tensor(data["std"]).view(-1, 1, 1)
    names = data.get("class_names") or [str(i) for i in range(saved.architecture["num_classes"])]
    k = min(top_k, len(names))
    predictions = []
    for path in images:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no image file {str(path)!r}")
        image = (read_image(Path(path), size, channels) - mean) / std  # (C, H, W)
        with torch.no_grad():
            probabilities = model(image[None]).softmax(1)[0]  # (classes,)
        top = probabilities.topk(k)
        predictions.append(
            Prediction(str(path), tuple((names[i], p.item()) for p, i in zip(top.values, top.indices, strict=True)))
        )
    return predictions
