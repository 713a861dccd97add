"""DεpS (S113, deps; Annavajjala, Khare et al. 2024, "DεpS: Delayed ε-Shrinking for Faster Once-For-All Training"):
train a once-for-all supernet (``convzoo.models.deps``) so that every subnet works without retraining.

The schedule, over training progress ``p`` (the fraction of optimizer steps done, told to the model by the trainer
through ``set_training_progress``):

- **full-model warm-up** (``p < epsilon - ramp``): only the largest subnet trains, on cross-entropy with label
  smoothing;
- **ε-shrinking** (``p ≥ epsilon - ramp``): every step trains ``subnets`` subnets on the batch, the sandwich of the
  official code: the largest (cross-entropy, weight 1), the smallest and ``subnets - 2`` uniformly random ones,
  each on in-place distillation from the largest's detached soft labels, ``T² · CE(softmax(z_max/T), s/T)``,
  weighted by ``β``. The gradients are summed (the official ``--gradient_aggregation sum``), so one loss
  ``CE_max + β Σ KD_i`` gives the official gradient;
- **E, the incremental subnet learning rate**: ``β · lr(p)`` is the subnets' effective rate. Over the ``ramp`` of
  training before ``epsilon`` it rises linearly from 0 to ``lr(epsilon)`` (``β = ((p - epsilon + ramp) / ramp) ·
  lr(epsilon) / lr(p)``); from ``epsilon`` on ``β = 1``. ``lr`` is the trainer's own schedule (:func:`subnet_weight`);
- **width reorganisation**: at the first shrinking step the supernet sorts its middle channels by importance
  (``sort``, the official ``--reorganize_weights``), so the leading channels that small subnets keep are the
  important ones of the partially trained full model.

The paper's defaults: ``epsilon`` ≈ 0.5 (ImageNet: 150 of 270 epochs), a 5-epoch ramp (``ramp`` ≈ 0.02), 4 subnets
per step, ``T = 1``. Test metrics: accuracy and loss of the largest subnet (``acc``, ``loss``), of the smallest
(``min_acc``) and of ``sampled`` random subnets fixed by ``sample_seed`` (``sub1_acc``, ...); each evaluated subnet
is extracted (``supernet.subnet``) and its BN statistics recalibrated on ``calibrate`` training images, as OFA
evaluates subnets (0 keeps the shared running statistics). Departures: the official sampling seeds Python's
``random`` per step, this task draws from torch's generator (saved in checkpoints, so ``--resume`` is exact); the
reorganisation sorts each block's channels globally (the official call keeps the channels of the middle expand
ratio in their bucket, meaningless after a full-model-only warm-up) and, as there, leaves the optimizer's
momentum in the old order; BN and bias parameters are not exempted from weight decay; BN recalibration uses 512
plain training images (OFA: 2,000 augmented ones). Train in one process: a step runs several forwards over
different parameter subsets (the kernel transforms are unused in the warm-up), which DistributedDataParallel as the
trainer builds it (no ``find_unused_parameters``) does not support.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from convzoo.core.validate import check_int, check_number
from convzoo.data.base import load_dataset
from convzoo.models import create_model
from convzoo.models.deps import OFASupernet, SubnetConfig
from convzoo.registry import TASKS
from convzoo.train.task import Batch, Task, config_overrides

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = [
    "DEpS",
    "SubnetScore",
    "calibrate_norms",
    "calibration_images",
    "inplace_kd",
    "score_checkpoint_subnets",
    "score_subnet",
    "subnet_weight",
]

GRID = 100_000  # steps of the fine grid on which the trainer's schedule is read as a function of progress


def inplace_kd(student_logits: Tensor, teacher_soft: Tensor, temperature: float) -> Tensor:
    """``T² · mean_i Σ_k -q_ik log softmax(s_i/T)_k`` for ``(B, K)`` student logits and teacher probabilities ``q``."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    return temperature**2 * (-(teacher_soft * log_student).sum(1)).mean()


def subnet_weight(progress: float, epsilon: float, ramp: float, config: TrainConfig) -> float:
    """``β``: the subnets' gradient weight at training ``progress`` (see the module docstring). 0 before
    ``epsilon - ramp``; then ``β · lr(p)`` rises linearly to ``lr(epsilon)``; 1 from ``epsilon`` on."""
    from convzoo.train.trainer import lr_factor

    start = epsilon - ramp
    if progress < start:
        return 0.0
    if progress >= epsilon or ramp <= 0:
        return 1.0
    factor = lr_factor(config, GRID, max(1, GRID // config.epochs))
    now, target = factor(round(progress * GRID)), factor(min(GRID - 1, round(epsilon * GRID)))
    if now <= 0:
        return 0.0
    return (progress - start) / ramp * target / now


@torch.no_grad()
def calibrate_norms(model: nn.Module, images: Tensor, batch_size: int = 256) -> nn.Module:
    """``model`` with every BN's running statistics recomputed as the plain average over ``images`` (``(N, C, H,
    W)``), as OFA resets a subnet's statistics before scoring it; left in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    model.eval()
    for m in norms:
        m.train()  # batch statistics in the norms only: dropout stays off
    for chunk in images.split(batch_size):
        model(chunk)
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    return model.eval()


@dataclass(frozen=True)
class SubnetScore:
    """A subnet's test accuracy and cross-entropy, and its MACs (millions) at the data's image size."""

    config: SubnetConfig
    mmacs: float
    acc: float
    loss: float


def calibration_images(dataset: Dataset, count: int, device: torch.device) -> Tensor | None:
    """``count`` training images of ``dataset``'s data (a fixed random subset, seed 0), or None for 0."""
    if count <= 0:
        return None
    train_set = load_dataset(dataset.info.name, "train", dataset.info.extra.get("root"))
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))
    return torch.stack([train_set[i][0] for i in order[:count].tolist()]).to(device)


@torch.no_grad()
def score_subnet(
    supernet: OFASupernet, config: SubnetConfig, dataset: Dataset, calibration: Tensor | None, device: torch.device
) -> SubnetScore:
    """Extract the subnet ``config``, recalibrate its BN statistics on ``calibration`` images (unless None) and
    score it on ``dataset``; the supernet and torch's global random state are left untouched."""
    subnet = supernet.subnet(config).eval()
    if calibration is not None:
        calibrate_norms(subnet, calibration)
    loss, correct, seen = 0.0, 0, 0
    for images, labels in DataLoader(dataset, batch_size=256, generator=torch.Generator()):
        images, labels = images.to(device), labels.to(device)
        logits = subnet(images).float()
        loss += F.cross_entropy(logits, labels, reduction="sum").item()
        correct += (logits.argmax(1) == labels).sum().item()
        seen += labels.numel()
    mmacs = supernet.subnet_macs(config, tuple(dataset.info.image_size)) / 1e6
    return SubnetScore(config, mmacs, correct / max(seen, 1), loss / max(seen, 1))


def score_checkpoint_subnets(
    path: str | Path, *, budget: int | None = None, count: int = 5, seed: int = 0, calibrate: int | None = None
) -> tuple[list[tuple[str, SubnetScore]], str]:
    """The largest and smallest subnets of the ``deps`` checkpoint ``path`` and ``count`` random ones (from
    ``seed``; at most ``budget`` MACs each when given), each scored on the test split of the data it was trained
    on (:func:`score_subnet`; ``calibrate`` training images, default the run's option). Returns ``(name, score)``
    rows and the data's name."""
    from convzoo.train.checkpoint import build_from_checkpoint

    check_int(count, "count", "subnets", low=0)
    model, checkpoint = build_from_checkpoint(path)
    if checkpoint.task != "deps":
        raise ValueError(f"subnets: {str(path)!r} is a {checkpoint.task!r} checkpoint, not one of the deps task")
    supernet = _supernet(model)
    options = DEpS().resolve_options(checkpoint.meta.get("train_config", {}).get("options", {}))
    train_config = checkpoint.meta.get("train_config", {})
    data, root = checkpoint.meta.get("data", {}).get("name", "digits"), train_config.get("data_root")
    dataset = load_dataset(data, "test", root)
    dataset.info.extra["root"] = root
    size = tuple(dataset.info.image_size)
    generator = torch.Generator().manual_seed(seed)
    rows = [("largest", supernet.largest()), ("smallest", supernet.smallest())]
    for i in range(count):
        config = supernet.sample(generator) if budget is None else supernet.sample_under(budget, size, generator)
        rows.append((f"sample {i + 1}", config))
    if budget is not None:
        rows = [(name, c) for name, c in rows if supernet.subnet_macs(c, size) <= budget]
    device = next(supernet.parameters()).device
    calibration = calibration_images(dataset, options["calibrate"] if calibrate is None else calibrate, device)
    return [(name, score_subnet(supernet, c, dataset, calibration, device)) for name, c in rows], data


def _supernet(net: nn.Module) -> OFASupernet:
    model = getattr(net, "module", net)  # DDP wraps the model
    if not isinstance(model, OFASupernet):
        raise TypeError(f"deps: trains an OFASupernet, got {type(model).__name__}")
    return model


@TASKS.register("deps", kind="task", papers=("deps",))
class DEpS(Task):
    """Delayed ε-shrinking of a once-for-all supernet; test accuracy of its largest, smallest and sampled subnets."""

    name = "deps"
    primary = "acc"
    model_kinds = ("supernet",)
    distributed = False
    single_process = "a step runs forwards over different parameter subsets, which DDP as built here does not support"
    options = {
        "epsilon": 0.5,
        "ramp": 0.02,
        "subnets": 4,
        "temperature": 1.0,
        "sort": True,
        "calibrate": 512,
        "sampled": 2,
        "sample_seed": 0,
    }
    recipe = {"optimizer": "sgd", "weight_decay": 3e-5}

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        options = super().resolve_options(given)
        owner = "train --task deps"
        check_number(options["epsilon"], "epsilon", owner, low=0.0, low_open=False, high=1.0)
        check_number(options["ramp"], "ramp", owner, low=0.0, low_open=False, high=options["epsilon"])
        check_int(options["subnets"], "subnets", owner, low=2)
        check_number(options["temperature"], "temperature", owner)
        check_int(options["calibrate"], "calibrate", owner, low=0)
        check_int(options["sampled"], "sampled", owner, low=0)
        check_int(options["sample_seed"], "sample_seed", owner, low=0)
        if not isinstance(options["sort"], bool):
            raise ValueError(f"{owner}: sort must be true or false, got {options['sort']!r}")
        return options

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        dataset = super().load(data, split, root, options)
        if split == "test":
            extra = dataset.info.extra
            extra.update(calibrate=options["calibrate"], sampled=options["sampled"], sample_seed=options["sample_seed"])
            extra["root"] = root
        return dataset

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        if config.op is not None:
            raise ValueError(f"train --task deps: the supernet takes no op=, got {config.op!r}")
        return {
            "model": config.model,
            "num_classes": info.num_classes,
            "in_channels": info.channels,
            "cfg": dict(config.cfg),
        }

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        cfg = config_overrides(architecture)
        return create_model(
            architecture["model"],
            classes=architecture["num_classes"],
            in_channels=architecture["in_channels"],
            **cfg,
        )

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        classes = architecture["num_classes"]
        if info.num_classes != classes:
            raise ValueError(f"{info.name} has {info.num_classes} classes but the checkpoint's supernet has {classes}")

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        images, labels = batch  # (B, C, H, W), (B,)
        options, model = config.options, _supernet(net)
        count = labels.numel()
        largest = model.largest()
        model.set_active(largest)
        shrinking = model.progress >= options["epsilon"] - options["ramp"]
        if shrinking and options["sort"] and not bool(model.channels_sorted):
            model.sort_channels()
        logits = net(images)  # (B, K), the largest subnet
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
        sums = {"seen": count, "acc": (logits.argmax(1) == labels).sum().item()}
        if shrinking:
            temperature = options["temperature"]
            soft = F.softmax(logits.detach().float() / temperature, dim=1)  # (B, K) in-place teacher
            beta = subnet_weight(model.progress, options["epsilon"], options["ramp"], config)
            distill = 0.0
            for index in range(1, options["subnets"]):
                model.set_active(model.smallest() if index == 1 else model.sample())
                kd = inplace_kd(net(images), soft, temperature)
                loss = loss + beta * kd
                distill += kd.item()
            model.set_active(largest)
            sums.update(kd=distill / (options["subnets"] - 1) * count, beta=beta * count)
        sums["loss_sum"] = loss.item() * count
        return loss, sums

    def subnets(self, model: OFASupernet, sampled: int, seed: int) -> dict[str, SubnetConfig]:
        """The subnets that :meth:`evaluate` scores, by metric prefix: largest (``""``), smallest (``"min_"``) and
        ``sampled`` random ones from ``seed`` (``"sub1_"``, ...)."""
        generator = torch.Generator().manual_seed(seed)
        chosen = {"": model.largest(), "min_": model.smallest()}
        chosen.update({f"sub{i + 1}_": model.sample(generator) for i in range(sampled)})
        return chosen

    @torch.no_grad()
    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        supernet = _supernet(model)
        extra = dataset.info.extra
        calibration = calibration_images(dataset, extra.get("calibrate", self.options["calibrate"]), device)
        sampled, seed = (
            extra.get("sampled", self.options["sampled"]),
            extra.get("sample_seed", self.options["sample_seed"]),
        )
        metrics: dict[str, float] = {}
        for prefix, config in self.subnets(supernet, sampled, seed).items():
            score = score_subnet(supernet, config, dataset, calibration, device)
            metrics.update({f"{prefix}acc": score.acc, f"{prefix}loss": score.loss, f"{prefix}mmacs": score.mmacs})
        return metrics

    def describe(self, architecture: dict[str, Any]) -> str:
        return f"{architecture['model']} supernet (deps), {architecture['num_classes']} classes"
