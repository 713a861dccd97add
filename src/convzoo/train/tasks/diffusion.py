"""Class-conditional diffusion (DiC S37, DiCo S63): DDPM ε-prediction on images in [−1, 1], label dropout for
classifier-free guidance; the test metric is the noise-prediction MSE at seeded timesteps and noise.

Any image dataset works whose side the backbone's down-sampling divides (digits: 1 × 32 × 32, 10 classes);
its standardisation is undone to [0, 1] and mapped to [−1, 1]. The model is the registered ``diffusion`` model
built for the data (``in_channels``, ``input_size``, ``classes``) with ``learn_sigma=False``; ``--cfg`` overrides
its other config fields (``hidden_size=32``, ``class_dropout=0.2``, ...). Option ``timesteps`` (default 1000) is
the length of the noise schedule. Sample with ``convzoo sample CHECKPOINT``.

Option ``size`` (default 0: the data's own) trains the denoiser on the images area-averaged down to ``size``², and
the samples are brought back to the data's size by bilinear upsampling (:func:`convzoo.train.diffusion.decode`).
That is DiC's own setting — it denoises 32×32 latents that a fixed decoder turns into 256² images — with the fixed
decoder being bilinear upsampling: for ``digits``, whose 32×32 images are scikit-learn's 8×8 scans upsampled
bilinearly, ``size=8`` denoises the scans themselves (16× fewer pixels) and decodes them as the data was made.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_int
from convzoo.data.base import TensorImageDataset, load_dataset
from convzoo.models import create_model
from convzoo.registry import TASKS
from convzoo.train.diffusion import GaussianDiffusion
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Diffusion", "to_unit_range"]

EVAL_SEED = 1234


def to_unit_range(dataset: Any) -> TensorImageDataset:
    """A standardised image dataset (``.images``, ``.labels``, ``.info`` with mean/std) mapped to [−1, 1]."""
    images = getattr(dataset, "images", None)
    if images is None or getattr(dataset, "labels", None) is None:
        raise ValueError(f"train --task diffusion: {dataset.info.name} is not an in-memory labelled image dataset")
    mean = torch.tensor(dataset.info.mean).view(1, -1, 1, 1)
    std = torch.tensor(dataset.info.std).view(1, -1, 1, 1)
    unit = (images * std + mean).clamp(0, 1)  # (N, C, H, W) in [0, 1]
    return TensorImageDataset(unit * 2 - 1, dataset.labels, dataset.info)


@TASKS.register("diffusion", kind="task", papers=("dic", "dico"))
class Diffusion(Task):
    """Class-conditional DDPM training of a ``diffusion`` backbone; test noise-prediction MSE (lower is better)."""

    name = "diffusion"
    primary = "loss"
    higher_is_better = False
    model_kinds = ("diffusion",)
    options = {"timesteps": 1000, "size": 0}
    # AdamW without decay as DiT/DiC/DiCo train (their 1e-4 at batch 256; the short CPU budgets here take 1e-3)
    recipe = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_int(options["timesteps"], "timesteps", "train --task diffusion", low=2)
        check_int(options["size"], "size", "train --task diffusion", low=0)
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        dataset = to_unit_range(load_dataset(data, split, root))
        dataset.info.extra["timesteps"] = options["timesteps"]
        height, width = dataset.info.image_size
        size = options["size"]
        if size and (size, size) != (height, width):
            if height % size or width % size:
                raise ValueError(
                    f"train --task diffusion: size {size} must divide the data's {height}×{width} images "
                    "(the images are averaged over whole blocks)"
                )
            images = F.interpolate(dataset.images, size=(size, size), mode="area")  # (N, C, size, size)
            info = dataclasses.replace(dataset.info, image_size=(size, size), extra=dict(dataset.info.extra))
            info.extra["output_size"] = height
            dataset = TensorImageDataset(images, dataset.labels, info)
        return dataset

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        height, width = info.image_size
        if height != width:
            raise ValueError(f"train --task diffusion: needs square images, {info.name} has {height}×{width}")
        return {
            "model": config.model,
            "channels": info.channels,
            "size": height,
            "classes": info.num_classes,
            "timesteps": config.options["timesteps"],
            "output_size": info.extra.get("output_size", height),  # the data's size, which samples are decoded to
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        return create_model(
            architecture["model"],
            **{
                "in_channels": architecture["channels"],
                "input_size": architecture["size"],
                "classes": architecture["classes"],
                "learn_sigma": False,
                **cfg,
            },
        )

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        shape = (info.channels, *info.image_size)
        expected = (architecture["channels"], architecture["size"], architecture["size"])
        if shape != expected or info.num_classes != architecture["classes"]:
            raise ValueError(
                f"{info.name} is {shape} with {info.num_classes} classes but the checkpoint's model generates "
                f"{expected} with {architecture['classes']} classes"
            )

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        images, labels = batch  # (B, C, H, W) in [−1, 1], (B,)
        loss = GaussianDiffusion(config.options["timesteps"]).loss(net, images, labels)
        count = labels.numel()
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        """Noise-prediction MSE over the test split, each image at a timestep and noise drawn from a generator
        seeded with ``EVAL_SEED`` (the same draws every epoch, and the global RNG untouched)."""
        diffusion = GaussianDiffusion(dataset.info.extra["timesteps"])
        generator = torch.Generator().manual_seed(EVAL_SEED)
        total, seen = 0.0, 0
        for images, labels in DataLoader(dataset, batch_size=128):
            t = torch.randint(0, diffusion.timesteps, (images.shape[0],), generator=generator)
            noise = torch.randn(images.shape, generator=generator)
            images, labels, t, noise = (v.to(device) for v in (images, labels, t, noise))
            eps = model(diffusion.q_sample(images, t, noise), t, labels)[:, : images.shape[1]]
            total += torch.sum((eps.float() - noise) ** 2).item() / noise[0].numel()
            seen += images.shape[0]
        return {"loss": total / max(seen, 1)}

    def describe(self, architecture: dict[str, Any]) -> str:
        size = architecture["size"]
        return (
            f"{architecture['model']} (diffusion), {architecture['classes']} classes, "
            f"{architecture['channels']}×{size}×{size}"
        )
