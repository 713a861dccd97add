"""What the trainer asks of a task: its data, its model, its loss and its test metrics.

``convzoo.train.train`` is one loop (optimizer, warm-up + cosine schedule, EMA, bf16, DDP, Ctrl-C and
``--resume``, checkpoints, ``metrics.jsonl``) for every task; a :class:`Task` fills in what differs between
classifying images, upscaling them or ranking items. Tasks are registered in ``convzoo.registry.TASKS`` (one file
per task in ``convzoo.train.tasks``), so a new task is one file:

>>> from convzoo.registry import TASKS
>>> TASKS.get("classify").obj.primary
'acc'

A task's *options* are the settings only it has (``scale`` for super-resolution, ``k`` for recall@k), given as
``TrainConfig(options={...})`` or ``convzoo train --option KEY=VALUE``; an option the task does not declare is
refused with the list of those it does. Its *recipe* fills the optimizer settings the user left unset, since a
learning rate that trains a classifier (SGD 0.05) ruins a super-resolution net (Adam 5e-4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler

from convzoo.data.base import load_dataset
from convzoo.registry import MODELS, TASKS

if TYPE_CHECKING:
    from convzoo.train.trainer import TrainConfig

__all__ = ["Task", "Batch", "config_overrides", "get_task", "task_names"]

Batch = tuple[Tensor, ...]


def config_overrides(architecture: dict[str, Any]) -> dict[str, Any]:
    """The model config overrides ``architecture["cfg"]`` as ``create_model`` takes them: a checkpoint's JSON turned
    tuples into lists, and config fields hold tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in architecture.get("cfg", {}).items()}


class Task:
    """One kind of training. Subclasses set the class attributes and override what differs from the defaults.

    ``primary`` names the test metric that sums a run up (``test_<primary>`` in every epoch record);
    ``higher_is_better`` says which way it improves. ``model_kinds`` are the registry kinds of the models the task
    trains. ``options`` maps each task option to its default; ``recipe`` holds defaults for the
    :class:`~convzoo.train.TrainConfig` fields ``optimizer``, ``lr``, ``weight_decay``, ``label_smoothing``
    and ``nesterov``.
    ``distributed`` is False for a task that cannot run under DDP (a graph task, whose one batch is the whole data
    set; a supernet task, whose step runs forwards over different parameter subsets); ``single_process`` says why,
    in the trainer's refusal under torchrun.
    """

    name: ClassVar[str] = ""
    primary: ClassVar[str] = "acc"
    higher_is_better: ClassVar[bool] = True
    model_kinds: ClassVar[tuple[str, ...]] = ("classify",)
    options: ClassVar[dict[str, Any]] = {}
    recipe: ClassVar[dict[str, Any]] = {}
    distributed: ClassVar[bool] = True
    single_process: ClassVar[str] = "its one batch is the whole data set, which DDP cannot split"
    default_data: ClassVar[str] = "digits"  # the embedded data set the task trains on when none is named
    unit: ClassVar[str] = "images"  # what :meth:`examples` counts, in messages ("test nodes", "clips", ...)

    # --- settings -------------------------------------------------------------------------------------------

    def resolve_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """The task's options with ``given`` applied; an unknown key raises naming those the task takes."""
        for key in given:
            if key not in self.options:
                takes = ", ".join(sorted(self.options)) or "none"
                raise ValueError(f"train: task {self.name!r} takes no option {key!r} (its options: {takes})")
        return {**self.options, **given}

    def check_model(self, model: str) -> None:
        """Refuse a model of another task, naming the task's models (before any data is loaded)."""
        entry = MODELS.get(model)
        if entry.kind not in self.model_kinds:
            mine = [e.name for e in MODELS.entries() if e.kind in self.model_kinds]
            shown = ", ".join(mine[:12]) + (", ..." if len(mine) > 12 else "")
            raise ValueError(
                f"train: {model!r} is a {entry.kind} model; task {self.name!r} trains "
                f"{'/'.join(self.model_kinds)} models ({shown})"
            )

    # --- data -----------------------------------------------------------------------------------------------

    def load(self, data: str, split: str, root: str | None, options: dict[str, Any]) -> Dataset:
        """The ``split`` ("train" or "test") of the dataset ``data`` (from the folder ``root`` for on-disk sets),
        with the task's resolved ``options``; the default reads the dataset registry."""
        return load_dataset(data, split, root)

    def check_data(self, architecture: dict[str, Any], info: Any) -> None:
        """Refuse data the model of ``architecture`` cannot be scored on (``convzoo eval --data``)."""

    def batches(self, dataset: Dataset, batch_size: int, sampler: Sampler | Iterable[int]) -> Iterable[Batch]:
        """One epoch of training batches in the order ``sampler`` gives (a seeded or distributed sampler)."""
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler)

    def examples(self, dataset: Dataset) -> int:
        """How many test examples ``dataset`` scores (images, nodes, users), for messages."""
        return len(dataset)

    def to_device(self, batch: Batch, device: torch.device) -> Batch:
        """``batch`` on ``device`` (every tensor in it)."""
        return tuple(t.to(device) if isinstance(t, Tensor) else t for t in batch)

    def data_record(self, info: Any) -> dict[str, Any]:
        """What the checkpoint records of the data (enough for ``convzoo eval`` to load it again)."""
        record = dataclasses.asdict(info) if dataclasses.is_dataclass(info) else dict(info)
        record.pop("split", None)
        return record

    # --- model ----------------------------------------------------------------------------------------------

    def architecture(self, config: TrainConfig, info: Any) -> dict[str, Any]:
        """Everything :meth:`create` needs to rebuild the model, as JSON-able values (stored in checkpoints)."""
        raise NotImplementedError

    def create(self, architecture: dict[str, Any]) -> nn.Module:
        """The model described by ``architecture`` (as :meth:`architecture` wrote it), freshly initialised."""
        raise NotImplementedError

    # --- training and testing -------------------------------------------------------------------------------

    def step(self, net: nn.Module, batch: Batch, config: TrainConfig) -> tuple[Tensor, dict[str, float]]:
        """Loss of one batch (to back-propagate) and its running sums: ``seen`` (examples), ``loss_sum`` and any
        other ``<name>`` whose ``sum / seen`` is the epoch's ``train_<name>``."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, dataset: Dataset, device: torch.device) -> dict[str, float]:
        """Test metrics of ``model`` (in eval mode, no gradients): ``{"loss": ..., primary: ..., ...}``."""
        raise NotImplementedError

    def describe(self, architecture: dict[str, Any]) -> str:
        """One line naming the model of a checkpoint (messages, ``convzoo eval``)."""
        op = f", op={architecture['op']}" if architecture.get("op") else ""
        return f"{architecture['model']}{op} ({self.name})"


def task_names() -> list[str]:
    return TASKS.names()


def get_task(name: str) -> Task:
    """The registered task ``name`` as an instance; an unknown name raises with suggestions."""
    return TASKS.get(name).obj()
