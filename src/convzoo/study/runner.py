"""``convzoo study``: which convolution should I use, on my data and my hardware?

One small backbone (default: ``mixer_resnet20``, a CIFAR ResNet-20 layout whose blocks keep their
width) is trained once per operator on the same data with the same recipe; each trained model is
then measured on this machine with :func:`convzoo.profile.profile` (parameters, MACs, latency at
batch 1 with the thread count stated). The rows, a Pareto plot of accuracy against latency and the
settings are written to ``report.html``, ``results.json`` and ``results.csv``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from convzoo.core.validate import check_int
from convzoo.ops.base import kernel_for
from convzoo.registry import MODELS, OPS

__all__ = ["DEFAULT_OPS", "StudyConfig", "StudyRow", "run_study", "kernel_for"]

DEFAULT_OPS = ("conv", "dwsep", "shift", "inception_dw", "asym", "cp", "e2gc", "dilated_reparam", "sic")


@dataclass
class StudyConfig:
    ops: tuple[str, ...] = DEFAULT_OPS
    model: str = "mixer_resnet20"
    data: str = "digits"
    data_root: str | None = None
    epochs: int = 4
    batch_size: int = 32
    seed: int = 0
    out: str = "study"
    threads: int | None = None
    repeats: int = 30
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.ops:
            raise ValueError("study: needs at least one op")
        for op in self.ops:
            OPS.get(op)  # unknown names fail before any training, with suggestions
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"study: ops must be distinct, got {', '.join(self.ops)}")
        MODELS.get(self.model)
        check_int(self.epochs, "epochs", "study")
        check_int(self.repeats, "repeats", "study")


@dataclass
class StudyRow:
    op: str
    status: str  # "ok", or why the op could not be studied
    kernel_size: int | None = None
    test_acc: float | None = None
    params: int | None = None
    macs: int | None = None
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    efficiency: float | None = None
    train_s: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _study_one(config: StudyConfig, op: str, bar) -> StudyRow:
    from convzoo.profile import profile
    from convzoo.train import TrainConfig, train

    takes_kernel = "kernel_size" in MODELS.get(config.model).info.config_fields()
    kernel = kernel_for(op) if takes_kernel else None
    cfg = {"kernel_size": kernel} if takes_kernel else {}
    train_config = TrainConfig(
        model=config.model,
        op=op,
        data=config.data,
        data_root=config.data_root,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        out=str(Path(config.out) / "runs" / op),
        cfg=cfg,
        progress=config.progress,
    )
    started = time.perf_counter()
    try:
        result = train(train_config)
    except ValueError as error:  # the op cannot stand in this backbone: reported, not hidden
        return StudyRow(op, f"skipped: {error}", kernel)
    train_s = time.perf_counter() - started
    sample = result.input_shape  # the data train() loaded, not loaded again
    measured = profile(result.model, input_shape=sample, threads=config.threads, repeats=config.repeats, name=op)
    bar.set_postfix(op=op, acc=f"{result.test_accuracy:.3f}", ms=f"{measured.latency_ms:.2f}")
    return StudyRow(
        op,
        "ok",
        kernel,
        result.test_accuracy,
        measured.params,
        measured.macs,
        measured.latency_ms,
        measured.latency.iqr_ms,
        measured.efficiency,
        train_s,
        result.history,
    )


def run_study(config: StudyConfig) -> tuple[list[StudyRow], dict[str, Path]]:
    """Train and measure every op of ``config``; returns the rows and the paths of the written outputs."""
    from tqdm.auto import tqdm

    from convzoo.study.report import write_study

    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[StudyRow] = []
    bar = tqdm(config.ops, desc="study", unit="op", disable=not config.progress, dynamic_ncols=True)
    for op in bar:
        rows.append(_study_one(config, op, bar))
    settings = asdict(config) | {"threads_used": torch.get_num_threads(), "torch": torch.__version__}
    return rows, write_study(rows, settings, out)
