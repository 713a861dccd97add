"""Super-resolution: L1 on HR patches, PSNR/SSIM on the Y channel against bicubic (the field's protocol).

Options: ``scale`` (2, 3 or 4), ``patch`` (the HR patch side), ``samples`` (pairs drawn per epoch's data by the
samplers below, or by a data set of random crops such as ``div2k``) and ``sampler``: ``patches`` (the data set's
own pairs), ``samplingaug`` (S52: ``samples`` pairs drawn in proportion to the bicubic error, ``sr-photos`` only)
or ``uniform`` (the same number drawn uniformly, the paper's baseline). Every test records the bicubic baseline
beside the model (``psnr_bicubic``, ``ssim_bicubic``) and the gain ``psnr_gain``, so no run is read without it.

``residual`` (default ``False``, as the papers train) wraps the network in a global bicubic residual
(:class:`~convzoo.models.sr_residual.BicubicResidual`, VDSR's device: ``out = net(x) + bicubic(x)``) whose last conv
starts at zero, so a fresh model returns bicubic exactly and learns only the detail bicubic misses; short CPU budgets
beat bicubic with it where the papers' form does not yet (ESPCN ×4 after 64 steps: 15 dB below bicubic). The
checkpoint's architecture records it (``"residual": true``), so ``build_from_checkpoint``, ``convzoo upscale``, the
deploy form and the ONNX export all carry the bicubic term. Models whose papers already add an interpolated input
(A2N and SCNet: bilinear, :data:`OWN_SKIP`) have it swapped for bicubic.

``augment`` — ``none`` (default) or ``dihedral``: each training pair mirrored and turned alike by a random symmetry
of the square (:func:`convzoo.data.augment.random_dihedral`), the random flips and 90° rotations the SR papers
train with.

DSCLoRA fine-tuning (S29, :mod:`convzoo.train.sr_lora`): ``base=CKPT`` starts the network from a trained ``sr``
checkpoint of the same scale and residual (``dsclora`` from a ``span --cfg width=26`` run: its adapters then train
over the base's frozen kernels); ``teacher=CKPT`` adds the teacher's output (L1, weight ``teacher_weight``) and the
spatial affinity of its SPAN blocks (weight ``affinity_weight``) to the loss. The checkpoint written holds every
weight, so it rebuilds, upscales and deploys without the base or the teacher.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_choice, check_int, check_number
from convzoo.data.augment import DIHEDRAL_CHOICES, random_dihedral
from convzoo.data.base import load_dataset
from convzoo.data.sampling_aug import sampling_aug_pairs
from convzoo.data.sr_metrics import bicubic_upscale, psnr_y, ssim_y
from convzoo.models import create_model
from convzoo.models.sr_residual import BicubicResidual
from convzoo.registry import DATASETS, TASKS
from convzoo.train.sr_lora import dsclora_loss, load_base, read_sr_checkpoint
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["OWN_SKIP", "SuperResolution", "score_sr"]

SAMPLERS = ("patches", "samplingaug", "uniform")
# models whose papers add an interpolation of the input to the output themselves (A2N Sec. 3.1, SCNet's forward)
OWN_SKIP = {"a2n": "bilinear", "scnet_t": "bilinear"}


@torch.no_grad()
def score_sr(
    model: nn.Module,
    dataset: Dataset,
    scale: int,
    device: torch.device | str = "cpu",
    *,
    bicubic: dict[str, float] | None = None,
) -> dict[str, float]:
    """L1 loss, PSNR and SSIM (Y channel, ``scale``-pixel border) of ``model`` and of bicubic on ``dataset``'s
    ``(lr, hr)`` pairs, each the mean over images (scored one at a time: benchmark images differ in size).

    ``bicubic`` is the baseline's ``{"psnr", "ssim"}`` on this data when already known (it does not change between
    epochs); otherwise it is computed beside the model.
    """
    sums = {"loss": 0.0, "psnr": 0.0, "ssim": 0.0, "psnr_bicubic": 0.0, "ssim_bicubic": 0.0}
    seen = 0
    for lr, hr in DataLoader(dataset, batch_size=1):
        lr, hr = lr.to(device), hr.to(device)  # (b, 3, h, w), (b, 3, sh, sw)
        sr = model(lr).float().clamp(0, 1)  # (b, 3, sh, sw)
        count = lr.shape[0]
        sums["loss"] += F.l1_loss(sr, hr, reduction="mean").item() * count
        sums["psnr"] += psnr_y(sr, hr, scale) * count
        sums["ssim"] += ssim_y(sr, hr, scale) * count
        if bicubic is None:
            upscaled = bicubic_upscale(lr, scale)
            sums["psnr_bicubic"] += psnr_y(upscaled, hr, scale) * count
            sums["ssim_bicubic"] += ssim_y(upscaled, hr, scale) * count
        seen += count
    metrics = {k: v / max(seen, 1) for k, v in sums.items()}
    if bicubic is not None:
        metrics["psnr_bicubic"], metrics["ssim_bicubic"] = bicubic["psnr"], bicubic["ssim"]
    metrics["psnr_gain"] = metrics["psnr"] - metrics["psnr_bicubic"]
    return metrics


@TASKS.register("sr", kind="task", papers=("samplingaug",))
class SuperResolution(Task):
    """Super-resolution: any registered sr model at ×2/×3/×4; L1 loss, PSNR/SSIM on Y against bicubic."""

    name = "sr"
    primary = "psnr"
    default_data = "sr-photos"
    model_kinds = ("sr",)
    options = {
        "scale": 2, "patch": 96, "sampler": "patches", "samples": 2000, "residual": False, "augment": "none",
        "base": "", "teacher": "", "teacher_weight": 1.0, "affinity_weight": 1.0,
    }  # fmt: skip
    # Adam without decay, as every SR paper here trains (their 1e-4…5e-4; the short budgets here take the top)
    recipe = {"optimizer": "adamw", "lr": 5e-4, "weight_decay": 0.0}

    def __init__(self) -> None:
        self._bicubic: tuple[Dataset, dict[str, float]] | None = None  # (test set, its bicubic PSNR and SSIM)
        self._base: nn.Module | None = None  # the trained network a run starts from (option base)
        self._teacher: nn.Module | None = None  # the frozen teacher of a distilled run (option teacher)

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        check_choice(options["scale"], (2, 3, 4), "scale", "train --task sr")
        check_int(options["patch"], "patch", "train --task sr")
        check_choice(options["sampler"], SAMPLERS, "sampler", "train --task sr")
        check_int(options["samples"], "samples", "train --task sr")
        if not isinstance(options["residual"], bool):
            raise ValueError(f"train --task sr: residual must be true or false, got {options['residual']!r}")
        check_choice(options["augment"], DIHEDRAL_CHOICES, "augment", "train --task sr")
        for name in ("base", "teacher"):
            if not isinstance(options[name], str):
                raise ValueError(f"train --task sr: {name} must be the folder of a checkpoint, got {options[name]!r}")
        for name in ("teacher_weight", "affinity_weight"):
            check_number(options[name], name, "train --task sr", low=0)
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        scale, patch = options["scale"], options["patch"]
        if split == "train" and options["sampler"] != "patches":
            if data != "sr-photos":
                raise ValueError(
                    f"train --task sr: sampler={options['sampler']!r} draws from the sr-photos images, not {data!r}; "
                    "use sampler=patches for other data"
                )
            pairs = sampling_aug_pairs(
                split, scale=scale, patch=patch, length=options["samples"], uniform=options["sampler"] == "uniform"
            )
            pairs.info = load_dataset(data, split, root, scale=scale, patch=patch).info
            return pairs
        extra = {}
        if split == "train" and "samples" in inspect.signature(DATASETS.get(data).obj).parameters:
            extra["samples"] = options["samples"]  # a data set of random crops (div2k) draws this many
        return load_dataset(data, split, root, scale=scale, patch=patch, **extra)

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        residual = config.options["residual"]
        # recorded only when on, so checkpoints written before the option rebuild as they were
        architecture = {"model": config.model, "scale": config.options["scale"], "cfg": dict(config.cfg)} | (
            {"residual": True} if residual else {}
        )
        if config.options["base"]:  # create() starts from it; a checkpoint of this run holds every weight itself
            self._base = read_sr_checkpoint(config.options["base"], "base", architecture)
        if config.options["teacher"]:
            self._teacher = read_sr_checkpoint(config.options["teacher"], "teacher", architecture)
            self._teacher.requires_grad_(False)
        return architecture

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        model = self._create(architecture)
        if self._base is not None:
            load_base(model, self._base)
        return model

    def _create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        net = create_model(architecture["model"], scale=architecture["scale"], **cfg)
        if not architecture.get("residual", False):
            return net
        last = [m for m in net.modules() if isinstance(m, nn.Conv2d)][-1]  # the output conv of every sr model here
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()
        return BicubicResidual(net, own_skip=OWN_SKIP.get(architecture["model"]))

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        lr, hr = batch  # (B, 3, P/s, P/s), (B, 3, P, P)
        if config.options.get("augment", "none") == "dihedral":
            lr, hr = random_dihedral(lr, hr)  # each pair mirrored and turned alike, as the SR papers train
        count = lr.shape[0]
        if self._teacher is not None:
            options = config.options
            teacher = self._teacher.to(lr.device)
            loss, terms = dsclora_loss(net, teacher, lr, hr, options["teacher_weight"], options["affinity_weight"])
            return loss, {"seen": count, "loss_sum": loss.item() * count} | {k: v * count for k, v in terms.items()}
        sr = net(lr)  # (B, 3, P, P)
        loss = F.l1_loss(sr.float(), hr)
        return loss, {"seen": count, "loss_sum": loss.item() * count}

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        scale = dataset.info.extra["scale"]
        known = self._bicubic[1] if self._bicubic is not None and self._bicubic[0] is dataset else None
        metrics = score_sr(model, dataset, scale, device, bicubic=known)
        if known is None:  # the baseline of this test set, scored once for the whole run
            self._bicubic = (dataset, {"psnr": metrics["psnr_bicubic"], "ssim": metrics["ssim_bicubic"]})
        return metrics

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        scale = info.extra.get("scale")
        if scale != architecture["scale"]:
            raise ValueError(
                f"{info.name} pairs are ×{scale} but the checkpoint's model upscales ×{architecture['scale']}"
            )

    def describe(self, architecture: dict[str, Any]) -> str:
        residual = " + bicubic residual" if architecture.get("residual") else ""
        return f"{architecture['model']} ×{architecture['scale']}{residual} (sr)"
