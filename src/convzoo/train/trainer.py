"""The trainer: SGD/AdamW, warm-up + cosine or step schedule, label smoothing (S3), EMA, bf16, DDP, for every task.

What is trained and how it is scored comes from the task (``TrainConfig.task``, a :class:`~convzoo.train.task.Task`
registered in ``convzoo.registry.TASKS``: ``classify`` by default, ``sr``, ``node``, ``recommend``, ...); the loop,
the schedule, checkpoints and resuming are the same for all. ``train(TrainConfig(...))`` trains, evaluates after
every epoch, writes ``metrics.jsonl`` and a
checkpoint folder (``convzoo.train.checkpoint``) under ``out``, and resumes from it with
``resume=True``. Runs are deterministic under ``seed``: the data order of epoch ``e`` comes from a
generator seeded with ``(seed, e)``, and the torch RNG is saved with each checkpoint, so a resumed
run continues exactly as an uninterrupted one. Under ``torchrun`` (``WORLD_SIZE`` > 1) the same
loop runs with DistributedDataParallel (nccl on GPUs, gloo on CPU) and a distributed sampler;
only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel
from torch.utils.data import RandomSampler
from torch.utils.data.distributed import DistributedSampler

from convzoo.core.files import atomic_write_text
from convzoo.data.base import DatasetInfo
from convzoo.train.checkpoint import load_training_state, load_weights, read_checkpoint, save_checkpoint
from convzoo.train.evaluate import evaluate
from convzoo.train.task import Task, get_task

__all__ = ["TrainConfig", "TrainResult", "ema_with_warmup", "train", "evaluate", "warmup_cosine", "warmup_steps_decay"]

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step")


@dataclass
class TrainConfig:
    """Everything that defines a training run (recorded in the checkpoint)."""

    model: str = "resnet20"
    op: str | None = None
    task: str = "classify"
    options: dict[str, Any] = field(default_factory=dict)  # the task's own settings (``scale`` for sr, ...)
    data: str | None = None  # default: the task's embedded data (digits for classify, sr-photos for sr, ...)
    data_root: str | None = None
    epochs: int = 10
    batch_size: int = 32
    optimizer: str | None = None  # default: the task's recipe (SGD for classify)
    lr: float | None = None  # default: the task's recipe, else 0.05 for SGD, 2e-3 for AdamW
    momentum: float = 0.9
    nesterov: bool | None = None  # SGD: Nesterov's momentum (default; False: heavy-ball), unless the task's recipe says
    weight_decay: float | None = None  # default: 5e-4 for SGD, 0.05 for AdamW
    warmup_epochs: float = 0.2
    schedule: str = "cosine"  # after the warm-up: "cosine" decay to 0, or "step" (× lr_gamma at each lr_steps)
    lr_steps: tuple[float, ...] = ()  # "step": fractions of training (0, 1) at which the rate is multiplied
    lr_gamma: float = 0.1
    label_smoothing: float | None = None  # default: the task's recipe, else 0.1
    bf16: bool = False
    grad_clip: float | None = None
    ema_decay: float | None = None  # EMA of the weights, its decay warmed up as min(decay, (1 + n) / (10 + n))
    seed: int = 0
    out: str | None = None
    save_every: int = 1  # epochs between checkpoints (the last epoch and a Ctrl-C always save)
    cfg: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    device: str | None = None

    def __post_init__(self) -> None:
        task = get_task(self.task)
        self.options = task.resolve_options(dict(self.options))
        for key, value in task.recipe.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.optimizer is None:
            self.optimizer = "sgd"
        if self.label_smoothing is None:
            self.label_smoothing = 0.1
        if self.nesterov is None:
            self.nesterov = True
        if self.data is None:
            self.data = task.default_data
        checks = [
            (self.epochs >= 1, f"epochs must be ≥ 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch_size must be ≥ 1, got {self.batch_size}"),
            (self.save_every >= 1, f"save_every must be ≥ 1, got {self.save_every}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"),
            (self.lr is None or self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.warmup_epochs >= 0, f"warmup_epochs must be ≥ 0, got {self.warmup_epochs}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}"),
            (
                all(0 < f < 1 for f in self.lr_steps) and list(self.lr_steps) == sorted(set(self.lr_steps)),
                f"lr_steps must be increasing fractions of training in (0, 1), got {tuple(self.lr_steps)}",
            ),
            (self.schedule == "step" or not self.lr_steps, "lr_steps is for schedule='step', not 'cosine'"),
            (
                self.schedule != "step" or bool(self.lr_steps),
                "schedule='step' needs lr_steps, the fractions of training where the rate drops (e.g. 0.5, 0.75)",
            ),
            (0 < self.lr_gamma < 1, f"lr_gamma must be in (0, 1), got {self.lr_gamma}"),
            (self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0, got {self.grad_clip}"),
            (
                self.ema_decay is None or 0 < self.ema_decay < 1,
                f"ema_decay must be in (0, 1), got {self.ema_decay}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"train: {message}")
        self.lr_steps = tuple(float(f) for f in self.lr_steps)
        if self.lr is None:
            self.lr = 0.05 if self.optimizer == "sgd" else 2e-3
        if self.weight_decay is None:
            self.weight_decay = 5e-4 if self.optimizer == "sgd" else 0.05


@dataclass
class TrainResult:
    """The trained model, its last test metrics, every epoch's record, the checkpoint folder, and the data it
    was trained on (its test split's description: classes, channels, image size), so a caller that goes on to
    measure the model need not load the data again. ``test_metrics`` holds the task's test metrics of the last
    epoch (``{"loss": ..., "acc": ...}`` for classify, ``{"loss": ..., "psnr": ..., ...}`` for sr);
    ``test_accuracy`` is its ``acc`` (NaN for a task without one)."""

    model: nn.Module
    test_accuracy: float
    test_loss: float
    history: list[dict[str, Any]]
    checkpoint: Path | None
    data: DatasetInfo | None = None
    interrupted: bool = False  # stopped by Ctrl-C (SIGINT) after saving a checkpoint that --resume continues
    task: str = "classify"
    test_metrics: dict[str, float] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """``(1, C, H, W)``: one input of the data the model was trained on."""
        if self.data is None:
            raise ValueError("train: this result records no dataset, so no input shape")
        return (1, self.data.channels, *self.data.image_size)


class _Interrupt:
    """Ctrl-C (SIGINT) as a request: the first one is noted and the loop stops after the current batch, having
    saved a checkpoint; a second one interrupts at once, as Python's default does. Only in the main thread of a
    single process (under torchrun the launcher owns the signal)."""

    def __init__(self, enabled: bool) -> None:
        self.requested = False
        self._previous = None
        self._enabled = enabled and threading.current_thread() is threading.main_thread()

    def __enter__(self) -> _Interrupt:
        if self._enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C: the default KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self._enabled:
            signal.signal(signal.SIGINT, self._previous)


def warmup_cosine(total_steps: int, warmup_steps: int):
    """LR multiplier: linear warm-up from 0 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def warmup_steps_decay(total_steps: int, warmup_steps: int, fractions: tuple[float, ...], gamma: float):
    """LR multiplier: linear warm-up from 0 over ``warmup_steps``, then ``gamma ** k`` after the ``k``-th of the
    ``fractions`` of ``total_steps`` (the ResNet paper's ÷10 at 32k and 48k of 64k iterations: ``(0.5, 0.75)``)."""
    boundaries = [round(f * total_steps) for f in fractions]

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return gamma ** sum(step >= b for b in boundaries)

    return factor


def ema_with_warmup(decay: float):
    """The EMA update ``ema ← d·ema + (1 − d)·w`` with ``d = min(decay, (1 + n) / (10 + n))`` after ``n`` updates
    (TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``): a plain EMA at 0.999 still holds 55% of its
    first weights after 600 steps, which a short run then evaluates and samples from; the warm-up lets it follow
    the early weights and settle to ``decay``. For ``torch.optim.swa_utils.AveragedModel(multi_avg_fn=...)``."""

    @torch.no_grad()
    def update(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor | int) -> None:
        if not (torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0])):
            torch._foreach_copy_(averaged, current)  # counters (BatchNorm's num_batches_tracked) follow the model
            return
        n = int(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(averaged, current, 1 - d)

    return update


def lr_factor(config: TrainConfig, total_steps: int, steps_per_epoch: int):
    """The learning-rate multiplier per optimizer step of ``config``'s schedule."""
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "step":
        return warmup_steps_decay(total_steps, warmup, config.lr_steps, config.lr_gamma)
    return warmup_cosine(total_steps, warmup)


DIST_TIMEOUT_S = 300  # a collective that waits longer (a peer died or hangs) fails instead of blocking for good


def _distributed() -> tuple[int, int, int]:
    """``(world, rank, local_rank)``, joining the process group under torchrun.

    Collectives time out after ``CONVZOO_DIST_TIMEOUT_S`` seconds (default 300) rather than torch's 30 minutes, so
    a rank left waiting on a dead peer fails with an error; under torchrun the launcher usually ends the other
    ranks within seconds of one failing, before the timeout.
    ``CONVZOO_SINGLE_PROCESS=1`` trains alone even under torchrun (``convzoo study`` gives each rank its own runs).
    """
    world = 1 if os.environ.get("CONVZOO_SINGLE_PROCESS") == "1" else int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        seconds = float(os.environ.get("CONVZOO_DIST_TIMEOUT_S", DIST_TIMEOUT_S))
        dist.init_process_group(
            backend="nccl" if torch.cuda.is_available() else "gloo", timeout=datetime.timedelta(seconds=seconds)
        )
    rank = dist.get_rank() if world > 1 else 0
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return world, rank, local


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so saved and given settings compare equal."""
    return json.loads(json.dumps(value))


def _architecture(task: Task, config: TrainConfig, info: Any) -> dict[str, Any]:
    """The task's description of the model; a task other than classify is named in it, so a checkpoint rebuilds
    with the right task (classify checkpoints keep the form they always had)."""
    architecture = task.architecture(config, info)
    if task.name != "classify":
        architecture = {"task": task.name, **architecture}
    return _as_json(architecture)


def train(
    config: TrainConfig, *, resume: bool = False, on_epoch_end: Callable[[dict[str, Any]], bool | None] | None = None
) -> TrainResult:
    """Train ``config.model`` on ``config.data``; see the module docstring.

    ``on_epoch_end(record)`` is called on rank 0 after each epoch (and its checkpoint, every ``save_every`` epochs)
    with that epoch's metrics; returning ``False`` stops the run there, saving a checkpoint if the epoch had none (it
    can be resumed later with ``resume=True``). A run killed between checkpoints resumes from the last one and trains
    the epochs after it again; ``metrics.jsonl`` is rewritten from the checkpoint's history when it resumes.

    Ctrl-C (SIGINT, single process) stops after the current batch: the checkpoint then records the batches of
    the epoch already trained, and ``resume=True`` continues from the next one exactly as the uninterrupted run
    would (the epoch's data order is fixed by its seed). The result says ``interrupted=True``.
    """
    task = get_task(config.task)
    task.check_model(config.model)
    world, rank, local_rank = _distributed()
    if world > 1 and not task.distributed:
        raise ValueError(
            f"train: task {task.name!r} cannot be spread over {world} processes ({task.single_process}); "
            "run it in one process"
        )
    if config.device is not None:
        device = torch.device(config.device)
    elif torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    out = Path(config.out) if config.out else None
    checkpoint = None
    if resume:
        if out is None:
            raise ValueError("train: resume needs out=, the folder holding the checkpoint")
        checkpoint = read_checkpoint(out / "checkpoint")
        saved = checkpoint.meta.get("train_config", {})
        saved.setdefault("task", "classify")  # checkpoints from before tasks were all classifiers
        # options the task gained since the checkpoint was written take their defaults, which it trained with
        saved["options"] = _as_json(task.resolve_options(saved.get("options") or {}))
        for key in ("task", "model", "op", "data", "cfg", "options", "seed", "optimizer", "batch_size"):
            if saved.get(key) != _as_json(getattr(config, key)):
                raise ValueError(
                    f"train: cannot resume {str(out)!r}: it was trained with {key}={saved.get(key)!r}, "
                    f"not {getattr(config, key)!r}"
                )

    torch.manual_seed(config.seed)
    train_set = task.load(config.data, "train", config.data_root, config.options)
    test_set = task.load(config.data, "test", config.data_root, config.options)
    info = train_set.info
    architecture = _architecture(task, config, info)
    model = task.create(architecture)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
    else:
        optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if world > 1:
        sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
    else:
        sampler = None

    def epoch_order(epoch: int):
        if sampler is not None:
            sampler.set_epoch(epoch)
            return sampler
        return RandomSampler(train_set, generator=torch.Generator().manual_seed(config.seed * 10_007 + epoch))

    steps_per_epoch = len(task.batches(train_set, config.batch_size, epoch_order(0)))
    total_steps = steps_per_epoch * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, total_steps, steps_per_epoch))
    ema = None
    if config.ema_decay is not None:
        ema = AveragedModel(model, multi_avg_fn=ema_with_warmup(config.ema_decay), use_buffers=True)
    start_epoch, step, history = 0, 0, []
    if checkpoint is not None:
        load_weights(model, checkpoint, architecture)
        load_training_state(checkpoint, optimizer, scheduler, ema)
        start_epoch, step = checkpoint.meta["epoch"], checkpoint.meta["step"]
        history = list(checkpoint.meta.get("metrics", {}).get("history", []))
        if rank == 0:  # epochs trained after the last checkpoint (killed between saves) are trained again
            atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        if start_epoch >= config.epochs:
            raise ValueError(
                f"train: {str(out)!r} already finished {start_epoch} epochs; pass more than {start_epoch} to continue"
            )
    net: nn.Module = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    scheduled = getattr(model, "set_training_progress", None)  # a model whose regulariser is scheduled over training

    if rank == 0 and out is not None:
        out.mkdir(parents=True, exist_ok=True)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if config.bf16 else contextlib.nullcontext()
    interrupt = _Interrupt(enabled=world == 1)
    partial = (checkpoint.meta.get("metrics", {}).get("partial_epoch") if checkpoint is not None else None) or {}

    def save(epoch_done: int, partial_epoch: dict[str, Any] | None = None) -> None:
        last = history[-1] if history else {}
        metrics: dict[str, Any] = {"history": history}
        metrics.update({k: v for k, v in last.items() if k.startswith("test_")})  # test_acc, test_psnr, ...
        if partial_epoch is not None:
            metrics["partial_epoch"] = partial_epoch
        save_checkpoint(
            out / "checkpoint",
            model,
            architecture,
            data=task.data_record(info),
            epoch=epoch_done,
            step=step,
            optimizer=optimizer,
            scheduler=scheduler,
            ema=ema,
            metrics=metrics,
            train_config=dataclasses.asdict(config),
        )

    with interrupt:
        for epoch in range(start_epoch, config.epochs):
            loader = task.batches(train_set, config.batch_size, epoch_order(epoch))
            net.train()
            started = time.perf_counter() - partial.get("time_s", 0.0)
            skip = partial.get("batches", 0)  # batches this epoch already trained before an interrupt
            sums: dict[str, float] = dict(partial.get("sums", {}))
            if "seen" in partial:  # a classify checkpoint interrupted before tasks kept their sums by name
                sums = {"seen": partial["seen"], "loss_sum": partial["loss_sum"], "acc": partial["correct"]}
            partial, stopped_mid_epoch = {}, False
            description = f"{config.model} epoch {epoch + 1}/{config.epochs}"
            bar = _progress(loader, config.progress and rank == 0, description)
            for batch_index, batch in enumerate(bar):
                if batch_index < skip:
                    continue  # the data order of an epoch is fixed by its seed: these were trained already
                batch = task.to_device(batch, device)
                if scheduled is not None:  # ScheduledDropPath (S26) and the like: rates follow training progress
                    scheduled(min(1.0, step / max(total_steps, 1)))
                with autocast:
                    loss, batch_sums = task.step(net, batch, config)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    nn.utils.clip_grad_norm_(params, config.grad_clip)
                optimizer.step()
                scheduler.step()
                if ema is not None:
                    ema.update_parameters(model)
                step += 1
                for key, value in batch_sums.items():
                    sums[key] = sums.get(key, 0.0) + value
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix({k: f"{_mean(sums, k):.3f}" for k in sums if k != "seen"})
                if interrupt.requested and batch_index + 1 < len(loader):
                    if out is not None:
                        done = {"batches": batch_index + 1, "sums": sums, "time_s": time.perf_counter() - started}
                        save(epoch, done)
                    stopped_mid_epoch = True
                    break
            if stopped_mid_epoch:
                break
            if world > 1:
                # DDP keeps parameters identical; BN statistics are per rank, so every rank takes rank 0's
                for buffer in model.buffers():
                    dist.broadcast(buffer, src=0)
            record: dict[str, Any] = {"epoch": epoch + 1, "step": step, "lr": optimizer.param_groups[0]["lr"]}
            record["train_loss"] = _mean(sums, "loss_sum")
            record.update({f"train_{k}": _mean(sums, k) for k in sums if k not in ("seen", "loss_sum")})
            record["time_s"] = time.perf_counter() - started
            if rank == 0:
                model.eval()
                record.update({f"test_{k}": v for k, v in task.evaluate(model, test_set, device).items()})
                if ema is not None:
                    ema.module.eval()
                    record.update({f"ema_test_{k}": v for k, v in task.evaluate(ema.module, test_set, device).items()})
                history.append(record)
                if out is not None:
                    with (out / "metrics.jsonl").open("a", encoding="utf-8") as f:
                        f.write(json.dumps(record) + "\n")
            due = (epoch + 1) % config.save_every == 0 or epoch + 1 == config.epochs
            if rank == 0 and out is not None and (due or interrupt.requested):
                save(epoch + 1)
            stop = interrupt.requested or (rank == 0 and on_epoch_end is not None and on_epoch_end(record) is False)
            if stop and not due and not interrupt.requested and rank == 0 and out is not None:
                save(epoch + 1)  # stopped by on_epoch_end between checkpoints: keep what was trained
            if world > 1:
                flag = torch.tensor([int(stop)])
                dist.broadcast(flag, src=0)
                stop = bool(flag.item())
                dist.barrier()
            if stop:
                break
    last = {k.removeprefix("test_"): v for k, v in history[-1].items() if k.startswith("test_")} if history else {}
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    checkpoint_path = (out / "checkpoint") if out is not None else None
    return TrainResult(
        model,
        last.get("acc", math.nan),
        last.get("loss", math.nan),
        history,
        checkpoint_path,
        test_set.info,
        interrupt.requested,
        task.name,
        last,
    )


def _mean(sums: dict[str, float], key: str) -> float:
    """An epoch's running ``sums[key]`` per example seen."""
    return sums.get(key, 0.0) / max(sums.get("seen", 0.0), 1.0)


def _progress(loader, enabled: bool, description: str):
    if not enabled:
        return loader
    from tqdm.auto import tqdm

    return tqdm(loader, desc=description, leave=False, dynamic_ncols=True)
