"""``convzoo study``: which convolution should I use, on my data and my hardware?

One small backbone (default: ``mixer_resnet20``, a CIFAR ResNet-20 layout whose blocks keep their width) is trained
per operator on the same data with the same recipe, once per seed (``seeds`` runs with seeds ``seed``,
``seed + 1``, ...): the accuracy is the mean over the seeds with its sample standard deviation (n − 1) and its
min–max. The model of the first seed is then measured as a user would ship it: its deploy form
(:func:`convzoo.deploy.layout.deploy_form`: re-parameterised, BatchNorms folded, in the memory layout measured
fastest) is timed at batch 1 interleaved with the model as trained (eager, NCHW), so both latencies come from one
side-by-side run. Seeds change the weights, not the architecture, so one seed's model is timed for the op.

Params and MACs are the trained operator's (what each op learns and costs as designed); the deploy form's MACs
are kept beside them, since merging a linear op into one dense kernel can change what the CPU computes. The
rows, a Pareto plot of mean accuracy against deploy latency, accuracy against params and MACs, the machine
(CPU, ISA flags, threads, torch) and the load are written to ``report.html``, ``results.json`` and
``results.csv``. Run folders: ``runs/<op>`` holds the first seed's checkpoint (the model timed),
``runs/<op>-seed<s>`` the others'.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from convzoo.core.validate import check_int
from convzoo.ops.base import kernel_for
from convzoo.registry import MODELS, OPS

__all__ = ["DEFAULT_OPS", "StudyConfig", "StudyInterrupted", "StudyRow", "run_study", "kernel_for"]

DEFAULT_OPS = ("conv", "dwsep", "shift", "inception_dw", "asym", "cp", "e2gc", "dilated_reparam", "sic")


@dataclass
class StudyConfig:
    """What to study. ``threads`` (``None``: the idle cores, at most torch's count) holds for training and timing;
    ``repeats`` is the number of interleaved timed rounds per op."""

    ops: tuple[str, ...] = DEFAULT_OPS
    model: str = "mixer_resnet20"
    data: str = "digits"
    data_root: str | None = None
    epochs: int = 4
    batch_size: int = 32
    seed: int = 0
    seeds: int = 2  # 3 seeds of the 9 default ops take about 12.5 CPU-minutes at 1 thread; 2 fit `make study` in 10
    out: str = "study"
    threads: int | None = None
    repeats: int = 50
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
        check_int(self.seeds, "seeds", "study")
        check_int(self.repeats, "repeats", "study")

    @property
    def seed_list(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]


@dataclass
class StudyRow:
    """One operator: accuracy over the seeds, the trained op's counts, its deploy form's latency and layout, and the
    trained (eager) form's latency measured beside it."""

    op: str
    status: str  # "ok", or why the op could not be studied
    kernel_size: int | None = None
    test_acc: float | None = None  # mean over the seeds
    test_acc_std: float | None = None  # sample standard deviation (n - 1); None for one seed
    test_acc_min: float | None = None
    test_acc_max: float | None = None
    test_accs: list[float] = field(default_factory=list)  # one per seed, in seed order
    seeds: list[int] = field(default_factory=list)
    params: int | None = None  # the trained model's
    macs: int | None = None  # the trained model's
    deploy_params: int | None = None
    deploy_macs: int | None = None
    latency_ms: float | None = None  # the deploy form, in `layout`
    latency_iqr_ms: float | None = None
    layout: str | None = None
    layout_ms: dict[str, float] = field(default_factory=dict)  # the deploy form in every layout tried
    train_latency_ms: float | None = None  # the model as trained, eager, default layout
    train_latency_iqr_ms: float | None = None
    efficiency: float | None = None  # the deploy form's waterline / its latency
    train_s: float | None = None  # all seeds together
    history: list[dict[str, Any]] = field(default_factory=list)  # every epoch of every seed, each with its "seed"

    @property
    def speedup(self) -> float | None:
        """Training-form latency / deploy latency."""
        if self.latency_ms is None or self.train_latency_ms is None or self.latency_ms <= 0:
            return None
        return self.train_latency_ms / self.latency_ms


def _run_dir(config: StudyConfig, op: str, seed: int) -> Path:
    runs = Path(config.out) / "runs"
    return runs / op if seed == config.seed else runs / f"{op}-seed{seed}"


class StudyInterrupted(Exception):
    """Ctrl-C stopped the study while training ``op`` (seed ``seed``); that run's checkpoint is in ``run_dir``.

    ``rows`` are the operators finished before it (their report is written); ``remaining`` the ops not finished.
    """

    def __init__(self, op: str, seed: int, run_dir: Path) -> None:
        super().__init__(f"interrupted while training {op} (seed {seed})")
        self.op, self.seed, self.run_dir = op, seed, run_dir
        self.rows: list[StudyRow] = []
        self.remaining: tuple[str, ...] = ()
        self.paths: dict[str, Path] = {}


def _train_seeds(config: StudyConfig, op: str, kernel: int | None, bar) -> tuple[list[Any], float]:
    from convzoo.train import TrainConfig, train

    cfg = {"kernel_size": kernel} if kernel is not None else {}
    results, started = [], time.perf_counter()
    for seed in config.seed_list:
        bar.set_postfix(op=op, seed=seed)
        train_config = TrainConfig(
            model=config.model,
            op=op,
            data=config.data,
            data_root=config.data_root,
            epochs=config.epochs,
            batch_size=config.batch_size,
            seed=seed,
            out=str(_run_dir(config, op, seed)),
            cfg=cfg,
            progress=config.progress,
        )
        result = train(train_config)
        if result.interrupted:
            raise StudyInterrupted(op, seed, _run_dir(config, op, seed))
        results.append(result)
    return results, time.perf_counter() - started


def _accuracy_fields(accuracies: list[float]) -> dict[str, Any]:
    return {
        "test_acc": statistics.fmean(accuracies),
        "test_acc_std": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
        "test_acc_min": min(accuracies),
        "test_acc_max": max(accuracies),
        "test_accs": accuracies,
    }


def _measure(config: StudyConfig, model: torch.nn.Module, input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The deploy form's latency, layout and counts, and the trained form's, on one ``input_shape`` input."""
    from convzoo.deploy.layout import deploy_form
    from convzoo.profile import count_layers, machine_peaks

    example = torch.randn(input_shape, generator=torch.Generator().manual_seed(0))
    deployed, report = deploy_form(model, example, repeats=config.repeats)
    trained_counts, deployed_counts = count_layers(model, (example,)), count_layers(deployed, (example,))
    peaks = machine_peaks(torch.get_num_threads())
    waterline = sum(peaks.roofline_ms(2 * layer.macs, layer.bytes) for layer in deployed_counts.layers)
    return {
        "params": trained_counts.params,
        "macs": trained_counts.macs,
        "deploy_params": deployed_counts.params,
        "deploy_macs": deployed_counts.macs,
        "latency_ms": report.latency_ms,
        "latency_iqr_ms": report.latency.iqr_ms,
        "layout": report.layout,
        "layout_ms": {name: timing.median_ms for name, timing in report.timings.items()},
        "train_latency_ms": report.trained.median_ms,
        "train_latency_iqr_ms": report.trained.iqr_ms,
        "efficiency": waterline / report.latency_ms if report.latency_ms > 0 else None,
    }


def _study_one(config: StudyConfig, op: str, bar) -> StudyRow:
    takes_kernel = "kernel_size" in MODELS.get(config.model).info.config_fields()
    kernel = kernel_for(op) if takes_kernel else None
    try:
        results, train_s = _train_seeds(config, op, kernel, bar)
    except ValueError as error:  # the op cannot stand in this backbone: reported, not hidden
        return StudyRow(op, f"skipped: {error}", kernel)
    seeds = config.seed_list
    history = [{"seed": seed, **record} for seed, r in zip(seeds, results, strict=True) for record in r.history]
    row = StudyRow(
        op, "ok", kernel, seeds=seeds, train_s=train_s, history=history,
        **_accuracy_fields([r.test_accuracy for r in results]),
    )  # fmt: skip
    try:
        measured = _measure(config, results[0].model, results[0].input_shape)  # the data train() loaded
    except (ValueError, TypeError) as error:  # a deploy form that differs from the model: trained, not timed
        row.status = f"no deploy form: {error}"
        return row
    for name, value in measured.items():
        setattr(row, name, value)
    bar.set_postfix(op=op, acc=f"{row.test_acc:.3f}", ms=f"{row.latency_ms:.2f}", layout=row.layout)
    return row


def run_study(config: StudyConfig) -> tuple[list[StudyRow], dict[str, Path]]:
    """Train every op of ``config`` once per seed and measure its deploy form; returns the rows and the paths of the
    written outputs (``report.html``, ``results.json``, ``results.csv`` in ``config.out``)."""
    from tqdm.auto import tqdm

    from convzoo.profile.machine import fingerprint
    from convzoo.profile.timing import LoadWatch, choose_threads, use_threads
    from convzoo.study.report import write_study

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    threads, threads_reason = choose_threads(config.threads)
    rows: list[StudyRow] = []
    with use_threads(threads) as used, LoadWatch() as watch:
        bar = tqdm(config.ops, desc="study", unit="op", disable=not config.progress, dynamic_ncols=True)
        try:
            for op in bar:
                rows.append(_study_one(config, op, bar))
        except StudyInterrupted as interrupted:
            interrupted.rows = rows
            interrupted.remaining = config.ops[len(rows) :]
            if rows:
                settings = asdict(config) | {"threads_used": used, "torch": torch.__version__, "partial": True}
                interrupted.paths = write_study(rows, settings, out)
            raise
        machine = fingerprint(used)
    settings = asdict(config) | {
        "threads_used": used,
        "threads_reason": threads_reason,
        "torch": torch.__version__,
        "batch": 1,
        "accuracy_spread": "sample standard deviation (n - 1) over the seeds; min and max also given",
        "machine": machine,
        "load": watch.load.to_dict() if watch.load is not None else None,
        "load_warning": watch.load.warning(used) if watch.load is not None else None,
    }
    return rows, write_study(rows, settings, out)
