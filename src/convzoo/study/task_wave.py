"""``convzoo study --task wave``: next-frame error against parameters of a plain CNN and its a-priori
CP-compressed forms, on the embedded wave simulator (S13, "A priori compression of convolutional neural networks
for wave simulators").

Rows: ``wavecnn`` (plain convolutions) and ``wavecnn`` with ``op="cp"`` at each rank of option ``ranks`` (default
``2,4,8,16``), each trained with the same budget through the trainer (task ``field``, ``--epochs`` default 4,
``--batch-size`` default 32, AdamW at the task's rate), once per seed; and ``persistence`` (``u⁺ = u``), the
no-learning baseline. Each row gives the test relative L2 error (mean ± std over seeds), the MSE and the parameter
count; ``results.json`` and ``report.html`` are written atomically.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from convzoo.study import outputs
from convzoo.study.task_args import given_settings, task_options

__all__ = ["WaveStudyConfig", "WaveRow", "main", "run_wave_study"]

OPTIONS = ("ranks", "channels", "depth")


@dataclass
class WaveStudyConfig:
    ranks: tuple[int, ...] = (2, 4, 8, 16)
    channels: int = 32
    depth: int = 4
    epochs: int = 4
    batch_size: int = 32
    seed: int = 0
    seeds: int = 1
    out: str = "study-wave"
    threads: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        from convzoo.core.validate import check_int

        self.ranks = tuple(self.ranks)
        for rank in self.ranks:
            check_int(rank, "rank", "study --task wave")
        for name in ("channels", "depth", "epochs", "batch_size", "seeds"):
            check_int(getattr(self, name), name, "study --task wave")


@dataclass
class WaveRow:
    model: str
    rel_l2: float | None = None
    rel_l2_std: float | None = None
    mse: float | None = None
    params: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


class _Persistence(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1:]


def _std(row: WaveRow) -> str:
    return "" if row.rel_l2_std is None else f"{row.rel_l2_std:.4f}"


def config_from_args(args: argparse.Namespace) -> WaveStudyConfig:
    options = task_options(args, "wave", OPTIONS)
    if "ranks" in options and not isinstance(options["ranks"], tuple):
        options["ranks"] = (options["ranks"],)
    given = given_settings(args, ("epochs", "batch_size", "seeds", "out", "threads"))
    return WaveStudyConfig(seed=args.seed, progress=not args.no_progress, **given, **options)


def main(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as error:
        print(f"convzoo study: error: {error}", file=sys.stderr)
        return 2
    rows, paths = run_wave_study(config)
    from convzoo.profile.report import text_table

    print(text_table(
        ("model", "rel L2", "MSE", "params"),
        [(r.model, f"{r.rel_l2:.4f}" + ("" if r.rel_l2_std is None else f" ± {r.rel_l2_std:.4f}"),
          f"{r.mse:.3g}", f"{r.params:,}") for r in rows],
    ))  # fmt: skip
    print(f"Report: {paths['html']}  (also {paths['json'].name}, {paths['csv'].name})")
    return 0


def run_wave_study(config: WaveStudyConfig) -> tuple[list[WaveRow], dict[str, Path]]:
    from convzoo.data.base import load_dataset
    from convzoo.profile.machine import fingerprint
    from convzoo.profile.timing import LoadWatch, choose_threads, use_threads
    from convzoo.train import TrainConfig, train
    from convzoo.train.tasks.field import score_field

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    threads, _ = choose_threads(config.threads)
    base = {"channels": config.channels, "depth": config.depth}
    entries = [("wavecnn", None, base)] + [(f"wavecnn cp r{r}", "cp", {**base, "rank": r}) for r in config.ranks]
    rows = []
    with use_threads(threads), LoadWatch() as watch:
        scores = score_field(_Persistence(), load_dataset("wave", "test"))
        rows.append(WaveRow("persistence", scores["rel_l2"], None, scores["mse"], 0))
        for label, op, cfg in entries:
            results = [
                train(
                    TrainConfig(
                        model="wavecnn",
                        op=op,
                        task="field",
                        data="wave",
                        epochs=config.epochs,
                        batch_size=config.batch_size,
                        seed=seed,
                        cfg=cfg,
                        progress=config.progress,
                        out=str(out / "runs" / f"{label.replace(' ', '-')}-seed{seed}"),
                    )
                )  # fmt: skip
                for seed in range(config.seed, config.seed + config.seeds)
            ]
            errors = [r.test_metrics["rel_l2"] for r in results]
            rows.append(WaveRow(
                label, statistics.fmean(errors), statistics.stdev(errors) if len(errors) > 1 else None,
                statistics.fmean(r.test_metrics["mse"] for r in results),
                sum(p.numel() for p in results[0].model.parameters()),
                [{"seed": config.seed + i, **h} for i, r in enumerate(results) for h in r.history],
            ))  # fmt: skip
    settings = asdict(config) | {
        "threads_used": threads,
        "torch": torch.__version__,
        "machine": fingerprint(threads),
        "load": watch.load.to_dict() if watch.load is not None else None,
        "load_line": outputs.load_line(watch.load),
    }
    cell = outputs.cell
    cells = [
        (
            cell(r.model),
            cell(r.rel_l2, "{:.4f}"),
            cell(r.rel_l2_std, "{:.4f}"),
            cell(r.mse, "{:.3g}"),
            cell(r.params, "{:,}"),
        )
        for r in rows
    ]
    body = (
        f"<h1>Wave simulator: next-frame error against parameters</h1>\n{outputs.machine_paragraph(settings)}\n"
        f"<p>{config.epochs} epochs, batch {config.batch_size}, {config.seeds} seed(s), {threads} thread(s); "
        "relative L2 error of the predicted next frame on the test sequences (persistence: the last frame "
        "repeated).</p>\n"
        f"{outputs.table(('model', 'rel L2', '± std', 'MSE', 'params'), cells)}\n{outputs.settings_table(settings)}"
    )
    results = {"settings": settings, "rows": [asdict(r) for r in rows]}
    csv = outputs.csv_text(("model", "rel_l2", "rel_l2_std", "mse", "params"), rows)
    return rows, outputs.write_outputs(out, results, csv=csv, report=outputs.page("convzoo study: wave", body))
