"""``convzoo study --task seg``: which segmentation network, for its mIoU and its deploy latency?

Each entry of ``--models`` (default ``fcn8s,fcn32s,dcfam,rcnet_seg``) is a registered ``seg`` model, optionally
with an operator swapped into its backbone as ``NAME:OP`` (``fcn8s:shift``). Every entry is trained with the same
budget through the trainer (task ``seg``) on ``--data`` (default ``shapes``, the embedded procedural set): the
backbone ``backbone`` (option, default ``resnet18``), ``--epochs`` (default 20) at batch ``--batch-size`` (default
8), AdamW at ``--lr`` (default the seg task's 2e-3), warm-up + cosine, once per seed, with the seg task's options
``augment`` (``none`` or ``dihedral``), ``train_length`` and ``size`` given as study options. Their defaults are
the data set's own (no augmentation, its length and image size) except for ``shapes``, whose study preset is
``size=96`` and ``augment=dihedral``: at its own 48² the true masks seen through a stride-8 decoder score only 0.77
mIoU (see the seg task), and its classes ignore orientation. The test split gives mIoU and pixel accuracy (mean ±
std over seeds).

Latency: the first seed's model in its deploy form (:func:`~convzoo.deploy.layout.deploy_form`: re-parameterised,
BNs folded, fastest memory layout) on one ``latency_size``² input (option, default the data's image size) at batch
1, the median of ``--repeats`` (default 20) interleaved runs with ``--threads`` intra-op threads. ``report.html``
(a table and the mIoU-against-latency front) and ``results.json`` are written atomically
(:mod:`convzoo.core.files`).
"""

from __future__ import annotations

import argparse
import html
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from convzoo.registry import DATASETS, MODELS, OPS
from convzoo.study import outputs
from convzoo.study.task_args import given_settings, model_names, refuse_flags, task_options

__all__ = ["SegStudyConfig", "SegRow", "main", "run_seg_study", "parse_entry", "pareto"]

DEFAULT_MODELS = ("fcn8s", "fcn32s", "dcfam", "rcnet_seg")
OPTIONS = ("backbone", "latency_size", "augment", "train_length", "size")
# the seg task options the study sets for a data set unless given; every other set trains with the task's defaults
PRESETS = {"shapes": {"augment": "dihedral", "size": 96}}


def parse_entry(entry: str) -> tuple[str, str | None]:
    """``"fcn8s"`` → ``("fcn8s", None)``; ``"fcn8s:shift"`` → ``("fcn8s", "shift")``; names are checked."""
    name, _, op = entry.partition(":")
    model = MODELS.get(name)  # an unknown name fails here, with suggestions
    if model.kind != "seg":
        seg = ", ".join(e.name for e in MODELS.entries() if e.kind == "seg")
        raise ValueError(f"study --task seg: {name!r} is a {model.kind} model, not a seg one (seg models: {seg})")
    if op:
        OPS.get(op)
    return name, op or None


@dataclass
class SegStudyConfig:
    """What to study; see the module docstring for the defaults."""

    models: tuple[str, ...] = DEFAULT_MODELS
    data: str = "shapes"
    data_root: str | None = None
    backbone: str = "resnet18"
    epochs: int = 20
    batch_size: int = 8
    lr: float | None = None
    seed: int = 0
    seeds: int = 1
    out: str = "study-seg"
    threads: int | None = None
    repeats: int = 20
    latency_size: int | None = None
    augment: str | None = None  # the seg task's option: "dihedral" turns each pair by a symmetry of the square
    train_length: int = 0  # the seg task's option: training images a generated set draws (0: its default)
    size: int | None = None  # the seg task's option: the image side of both splits (0: the set's own)
    progress: bool = True

    def __post_init__(self) -> None:
        from convzoo.core.validate import check_choice, check_int, check_number

        self.models = tuple(self.models) or DEFAULT_MODELS
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"study --task seg: models must be distinct, got {', '.join(self.models)}")
        for entry in self.models:
            parse_entry(entry)
        if DATASETS.get(self.data).kind != "seg":
            sets = ", ".join(e.name for e in DATASETS.entries() if e.kind == "seg")
            raise ValueError(f"study --task seg: {self.data!r} is not a segmentation set (seg datasets: {sets})")
        if MODELS.get(self.backbone).kind != "classify":
            raise ValueError(f"study --task seg: backbone must be a registered classifier, got {self.backbone!r}")
        for name in ("epochs", "batch_size", "seeds", "repeats"):
            check_int(getattr(self, name), name, "study --task seg")
        if self.latency_size is not None:
            check_int(self.latency_size, "latency_size", "study --task seg")
        if self.lr is not None:
            check_number(self.lr, "lr", "study --task seg")
        from convzoo.data.augment import DIHEDRAL_CHOICES

        preset = PRESETS.get(self.data, {})
        self.augment = preset.get("augment", "none") if self.augment is None else self.augment
        self.size = preset.get("size", 0) if self.size is None else self.size
        check_choice(self.augment, DIHEDRAL_CHOICES, "augment", "study --task seg")
        check_int(self.train_length, "train_length", "study --task seg", low=0)
        check_int(self.size, "size", "study --task seg", low=0)

    def task_options(self) -> dict[str, Any]:
        """The seg task's options every run trains with."""
        return {"augment": self.augment, "train_length": self.train_length, "size": self.size}

    def train_config(self, entry: str, seed: int, out: Path):
        from convzoo.train import TrainConfig

        model, op = parse_entry(entry)
        return TrainConfig(
            model=model, op=op, task="seg", data=self.data, data_root=self.data_root, epochs=self.epochs,
            batch_size=self.batch_size, lr=self.lr, seed=seed, out=str(out), cfg={"backbone": self.backbone},
            options=self.task_options(), progress=self.progress,
        )  # fmt: skip


@dataclass
class SegRow:
    """One model (with its op): test mIoU and pixel accuracy (mean over seeds), deploy latency."""

    model: str
    status: str = "ok"
    miou: float | None = None
    miou_std: float | None = None
    mious: list[float] = field(default_factory=list)
    pixel_acc: float | None = None
    params: int | None = None
    latency_ms: float | None = None
    latency_iqr_ms: float | None = None
    layout: str | None = None
    train_s: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def config_from_args(args: argparse.Namespace) -> SegStudyConfig:
    """The study of ``convzoo study --task seg``'s namespace; ``ValueError`` names a bad option."""
    options = task_options(args, "seg", OPTIONS)
    refuse_flags(args, "seg", ("model", "ops", "recipe"), "name models with --models")
    return SegStudyConfig(
        models=model_names(args),
        data_root=args.data_root,
        seed=args.seed,
        progress=not args.no_progress,
        **given_settings(args),
        **options,
    )


def main(args: argparse.Namespace) -> int:
    """``convzoo study --task seg``: exit 2 with one line for a bad option, else run, print the table, return 0."""
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as error:
        print(f"convzoo study: error: {error}", file=sys.stderr)
        return 2
    rows, paths, settings = run_seg_study(config)
    from convzoo.profile.report import text_table
    from convzoo.study.outputs import machine_line

    print(text_table(
        ("model", "mIoU", "pixel acc", "params", "deploy ms", "layout", "train s", "status"),
        [(r.model, _f(r.miou, "{:.4f}") + ("" if r.miou_std is None else f" ± {r.miou_std:.4f}"),
          _f(r.pixel_acc, "{:.4f}"), _f(r.params, "{:,}"), _f(r.latency_ms, "{:.2f}"), r.layout or "",
          _f(r.train_s, "{:.0f}"), r.status) for r in rows],
    ))  # fmt: skip
    print(f"\n{machine_line(settings)}; {settings['load_line']}")
    print(f"Report: {paths['html']}  (also {paths['json'].name}, {paths['csv'].name})")
    return 0 if any(r.status == "ok" for r in rows) else 2


def _f(value: Any, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def _time(config: SegStudyConfig, model: torch.nn.Module, size: int) -> dict[str, Any]:
    from convzoo.deploy.layout import deploy_form

    example = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    _, report = deploy_form(model.eval(), example, repeats=config.repeats, warmup=2)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "latency_ms": report.latency_ms,
        "latency_iqr_ms": report.latency.iqr_ms,
        "layout": report.layout,
    }


def run_seg_study(config: SegStudyConfig) -> tuple[list[SegRow], dict[str, Path], dict[str, Any]]:
    """Train, score and time every model; write the report; returns the rows, the paths and the settings."""
    from tqdm.auto import tqdm

    from convzoo.profile.machine import fingerprint
    from convzoo.profile.timing import LoadWatch, choose_threads, use_threads
    from convzoo.train import train
    from convzoo.train.task import get_task

    task = get_task("seg")  # the test split, loaded once first: a bad size or data folder fails before any training
    task.load(config.data, "test", config.data_root, task.resolve_options(config.task_options()))
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    threads, threads_reason = choose_threads(config.threads)
    rows: list[SegRow] = []
    started = time.perf_counter()
    with use_threads(threads) as used, LoadWatch() as watch:
        bar = tqdm(config.models, desc="seg study", unit="model", disable=not config.progress)
        for entry in bar:
            bar.set_postfix_str(entry)
            row = SegRow(entry)
            results = [
                train(config.train_config(entry, seed, out / "runs" / f"{entry.replace(':', '-')}-seed{seed}"))
                for seed in range(config.seed, config.seed + config.seeds)
            ]
            metrics = [r.test_metrics for r in results]
            row.mious = [m["miou"] for m in metrics]
            row.miou = statistics.fmean(row.mious)
            row.miou_std = statistics.stdev(row.mious) if len(row.mious) > 1 else None
            row.pixel_acc = statistics.fmean(m["pixel_acc"] for m in metrics)
            row.train_s = sum(h.get("time_s", 0.0) for r in results for h in r.history)
            row.history = [{"seed": config.seed + i, **h} for i, r in enumerate(results) for h in r.history]
            size = config.latency_size or results[0].data.image_size[0]
            try:
                for key, value in _time(config, results[0].model, size).items():
                    setattr(row, key, value)
            except Exception as error:  # noqa: BLE001 — a form that cannot be deployed is the row's status
                row.status = f"not timed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
            rows.append(row)
        bar.close()
    load = watch.load
    settings = asdict(config) | {
        "threads_used": used,
        "threads_reason": threads_reason,
        "machine": fingerprint(used),
        "torch": torch.__version__,
        "wall_s": time.perf_counter() - started,
        "load": load.to_dict() if load is not None else None,
        "load_line": outputs.load_line(load),
        "budget": (
            f"{config.epochs} epochs of {config.data} at batch {config.batch_size}, AdamW "
            f"{config.lr or 'the seg task default'} warm-up + cosine, backbone {config.backbone}, "
            f"{config.seeds} seed(s), augmentation {config.augment}"
            + (f", {config.train_length} training images" if config.train_length else "")
            + (f", images {config.size}²" if config.size else "")
        ),
    }
    return rows, write_seg_study(rows, settings, out), settings


def pareto(rows: list[SegRow]) -> list[str]:
    """Models no other beats on both mIoU (higher) and deploy latency (lower), fastest first."""
    return [r.model for r in outputs.pareto(rows, lambda r: r.latency_ms, lambda r: r.miou)]


COLUMNS = ("model", "status", "miou", "miou_std", "pixel_acc", "params", "latency_ms", "latency_iqr_ms", "layout",
           "train_s")  # fmt: skip


def _html(rows: list[SegRow], settings: dict[str, Any]) -> str:
    cell = outputs.cell
    front = set(pareto(rows))
    header = ("model", "mIoU", "± std", "pixel acc", "params", "deploy ms", "IQR ms", "layout", "train s", "status")
    cells = [
        (
            cell(r.model) + (" ★" if r.model in front else ""),
            cell(r.miou, "{:.4f}"),
            cell(r.miou_std, "{:.4f}"),
            cell(r.pixel_acc, "{:.4f}"),
            cell(r.params, "{:,}"),
            cell(r.latency_ms, "{:.3f}"),
            cell(r.latency_iqr_ms, "{:.3f}"),
            cell(r.layout),
            cell(r.train_s, "{:.0f}"),
            cell(r.status),
        )  # fmt: skip
        for r in rows
    ]
    points = [(r.model, r.latency_ms, r.miou, r.model in front) for r in rows if r.latency_ms and r.miou is not None]
    plot = (
        outputs.image(
            outputs.front_png(
                points,
                f"deploy latency, ms (batch 1, {settings['threads_used']} thread(s))",
                f"{settings['data']} test mIoU",
            ),
            "mIoU against deploy latency",
        )
        if points
        else ""
    )
    body = (
        f"<h1>Segmentation: mIoU against deploy latency</h1>\n{outputs.machine_paragraph(settings)}\n"
        f"<p>Budget, the same for every model: {html.escape(settings['budget'])}. {settings['threads_used']} "
        f"thread(s) ({html.escape(str(settings['threads_reason']))}). ★ marks the Pareto front (no model both "
        f"faster and more accurate).</p>\n{plot}\n{outputs.table(header, cells)}\n{outputs.settings_table(settings)}"
    )
    return outputs.page("convzoo study: segmentation", body)


def write_seg_study(rows: list[SegRow], settings: dict[str, Any], out: Path) -> dict[str, Path]:
    """``results.json``, ``results.csv`` and ``report.html`` in ``out``, each written atomically."""
    data = {"settings": settings, "rows": [asdict(r) for r in rows], "pareto": pareto(rows)}
    report = _html(rows, settings)
    return outputs.write_outputs(out, data, csv=outputs.csv_text(COLUMNS, rows), report=report)
