"""Try-on by spatial concatenation (Re-CatVTON, S97) on digits: the "garment" is a digit, the "person" to generate is
another image of the same digit, both in [−1, 1]; the test metric is the person half's noise-prediction error with
the garment and with the null garment.

Each image of a split is paired, once, with another image of its class drawn from a generator seeded per split, so a
batch is ``(person, garment)``, two ``(B, C, H, W)`` images; the model is a registered ``tryon`` model built for the
data (``in_channels``, ``input_size``; ``--cfg`` overrides the rest, e.g. ``backbone_cfg``). Training is
:func:`convzoo.models.re_catvton.tryon_loss` (the person half only, garments dropped to the null garment with the
model's ``garment_dropout``). The test draws each image's timestep and noises from a generator seeded with
``EVAL_SEED`` and reports ``loss`` (the person-half MSE given the garment, primary, lower is better), ``loss_null``
(the same draws with the null garment) and ``garment_gain = loss_null − loss``: positive when the garment half
informs the person half. Option ``timesteps`` (1000) is the length of the noise schedule. Samples come from
``ReCatVTON.sample`` (the person-half guidance with ground-truth garment injection).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_int
from convzoo.data.base import load_dataset
from convzoo.models import create_model
from convzoo.models.re_catvton import concat_halves, noised_garment, split_halves, tryon_loss
from convzoo.registry import TASKS
from convzoo.train.diffusion import GaussianDiffusion
from convzoo.train.task import Batch, Task, config_overrides
from convzoo.train.tasks.diffusion import to_unit_range

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["GarmentPairs", "TryOn", "score_tryon"]

EVAL_SEED = 1234
PAIR_SEED = {"train": 0, "test": 1}


class GarmentPairs(Dataset):
    """``(person, garment)`` pairs of ``(C, H, W)`` images in [−1, 1]: each image with another image of its class
    (itself only when it is its class's one image), drawn once from a generator seeded with ``seed``."""

    def __init__(self, images: Tensor, labels: Tensor, info: Any, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        partner = torch.arange(len(labels))
        for label in labels.unique():
            members = (labels == label).nonzero().flatten()  # (m,)
            if len(members) > 1:  # a derangement of the class: shift a random order by one
                order = members[torch.randperm(len(members), generator=generator)]
                partner[order] = order.roll(1)
        self.images, self.labels, self.partner, self.info = images, labels, partner, info

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.images[self.partner[index]]


@torch.no_grad()
def score_tryon(model: nn.Module, dataset: GarmentPairs, timesteps: int, device: torch.device | str = "cpu") -> dict:
    """Person-half noise-prediction MSE with the garment (``loss``) and with the null garment (``loss_null``), at
    timesteps and noises drawn from a generator seeded with ``EVAL_SEED``."""
    diffusion = GaussianDiffusion(timesteps)
    dim = getattr(getattr(getattr(model, "module", model), "config", None), "dim", -2)
    generator = torch.Generator().manual_seed(EVAL_SEED)
    sums, seen = {"loss": 0.0, "loss_null": 0.0}, 0
    for person, garment in DataLoader(dataset, batch_size=128):
        t = torch.randint(0, timesteps, (person.shape[0],), generator=generator)
        noise_p, noise_g = (
            torch.randn(person.shape, generator=generator),
            torch.randn(person.shape, generator=generator),
        )
        person, garment, t, noise_p, noise_g = (v.to(device) for v in (person, garment, t, noise_p, noise_g))
        person_t = diffusion.q_sample(person, t, noise_p)
        labels = torch.zeros_like(t)
        for key, clean in (("loss", garment), ("loss_null", None)):
            x = concat_halves(person_t, noised_garment(diffusion, clean, t, noise_g), dim)
            eps = split_halves(model(x, t, labels), dim)[0]  # (b, C, H, W)
            sums[key] += torch.sum((eps.float() - noise_p) ** 2).item() / noise_p[0].numel()
        seen += person.shape[0]
    metrics = {k: v / max(seen, 1) for k, v in sums.items()}
    metrics["garment_gain"] = metrics["loss_null"] - metrics["loss"]
    return metrics


@TASKS.register("tryon", kind="task", papers=("re-catvton",))
class TryOn(Task):
    """Re-CatVTON try-on on digit pairs of one class; test person-half noise MSE (lower is better)."""

    name = "tryon"
    primary = "loss"
    higher_is_better = False
    model_kinds = ("tryon",)
    options = {"timesteps": 1000}
    recipe = {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0}  # as the diffusion task (DiC's AdamW)

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_int(options["timesteps"], "timesteps", "train --task tryon", low=2)
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        unit = to_unit_range(load_dataset(data, split, root))
        unit.info.extra["timesteps"] = options["timesteps"]
        return GarmentPairs(unit.images, unit.labels, unit.info, PAIR_SEED[split])

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        height, width = info.image_size
        if height != width:
            raise ValueError(f"train --task tryon: needs square images, {info.name} has {height}×{width}")
        return {
            "model": config.model,
            "channels": info.channels,
            "size": height,
            "timesteps": config.options["timesteps"],
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        if isinstance(cfg.get("backbone_cfg"), tuple):  # JSON turned the (key, value) pairs into lists
            cfg["backbone_cfg"] = tuple(
                (k, tuple(v) if isinstance(v, list) else v) for k, v in (tuple(p) for p in cfg["backbone_cfg"])
            )
        return create_model(
            architecture["model"], in_channels=architecture["channels"], input_size=architecture["size"], **cfg
        )

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        shape = (info.channels, *info.image_size)
        expected = (architecture["channels"], architecture["size"], architecture["size"])
        if shape != expected:
            raise ValueError(f"{info.name} is {shape} but the checkpoint's model takes {expected}")

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        person, garment = batch  # (B, C, H, W) each, in [−1, 1]
        inner = getattr(net, "module", net).config  # the ReCatVTONConfig (net may be wrapped by DDP)
        labels = torch.zeros(person.shape[0], dtype=torch.long, device=person.device)
        diffusion = GaussianDiffusion(config.options["timesteps"])
        loss = tryon_loss(net, diffusion, person, garment, labels, inner.garment_dropout, dim=inner.dim)
        count = person.shape[0]
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        return score_tryon(model, dataset, dataset.info.extra["timesteps"], device)

    def describe(self, architecture: dict[str, Any]) -> str:
        size = architecture["size"]
        return f"{architecture['model']} (tryon), {architecture['channels']}×{size}×{size} person and garment"
