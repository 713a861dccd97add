"""``convzoo study --task audio``: the audio models' test accuracy against the latency of their deploy form on
one-second clips, on the same data and budget.

Each model (``--models``, default :data:`DEFAULT_MODELS`) is trained ``--seeds`` times (seeds ``--seed``,
``--seed`` + 1, …) for ``--epochs`` epochs on ``--data`` (default ``synth-sounds``) with the audio task's recipe,
at the study widths of :data:`STUDY_CFG` (narrower than the registered, paper-sized configs, so a CPU finishes a
study in minutes; ``--option per_class=N`` sizes synth-sounds, default 100 clips per class); then the trained
model's deploy form (:func:`convzoo.deploy.layout.deploy_form`: re-parameterised, BN folded, fastest layout) is
timed at batch 1 on a ``(1, 1, T)`` clip with ``--threads`` threads (default 1), the median of ``--repeats``
interleaved passes. ``results.json`` (every run and the per-model means) and ``report.html`` (a table and the
accuracy-latency plot) are written atomically to ``--out`` (default ``study-audio``).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from convzoo.core.files import atomic_write_json, atomic_write_text
from convzoo.core.options import parse_assignments
from convzoo.core.validate import check_int

__all__ = ["DEFAULT_MODELS", "STUDY_CFG", "main", "run_audio_study"]

DEFAULT_MODELS = ("aclnet", "acdnet", "pann_ds_cnn14", "convnext_audio_atto", "audio_ensemble", "wavemsnet")
# study widths: each family at a size a shared CPU trains in minutes (the registered configs are the papers')
STUDY_CFG: dict[str, dict[str, Any]] = {
    "aclnet": {"width": 0.25},
    "acdnet": {"channels": (2, 16, 8, 16, 16, 32, 32, 64, 64, 128, 128)},
    "micro_acdnet": {},
    "pann_ds_cnn14": {"widths": (16, 32, 64, 128, 128, 128), "embedding": 128},
    "pann_cnn14": {"widths": (8, 16, 32, 64, 64, 64), "embedding": 64},
    "convnext_audio_atto": {"depths": (1, 1, 2, 1), "dims": (16, 32, 64, 128)},
    "convnext_audio_tiny": {"depths": (1, 1, 2, 1), "dims": (16, 32, 64, 128)},
    "audio_ensemble": {"width": 0.125},
    "wavemsnet": {"branch_channels": 8, "widths": (16, 32, 32, 64)},
}


def _plot(rows: list[dict[str, Any]]) -> str:
    """The accuracy-latency scatter as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2))
    axes = figure.subplots()
    for row in rows:
        axes.scatter(row["latency_ms"], 100 * row["accuracy"], s=30)
        axes.annotate(
            row["model"],
            (row["latency_ms"], 100 * row["accuracy"]),
            fontsize=8,
            xytext=(4, 2),
            textcoords="offset points",
        )
    axes.set_xscale("log")
    axes.set_xlabel("deploy-form latency per 1-s clip, batch 1 (ms, log scale)")
    axes.set_ylabel("test accuracy (%)")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode()


def _html(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    head = "<tr><th>model</th><th>accuracy (%)</th><th>latency (ms)</th><th>params</th><th>MMACs</th></tr>"

    def spread(row: dict[str, Any]) -> str:
        return "" if row["accuracy_std"] is None else f" ± {100 * row['accuracy_std']:.1f}"

    body = "".join(
        f"<tr><td>{html.escape(r['model'])}</td><td>{100 * r['accuracy']:.1f}{spread(r)}</td>"
        f"<td>{r['latency_ms']:.3f}</td><td>{r['params']:,}</td><td>{r['macs'] / 1e6:.2f}</td></tr>"
        for r in rows
    )
    note = html.escape(
        f"{settings['data']}, {settings['epochs']} epochs, seeds {settings['seeds']}, {settings['threads']} thread(s), "
        f"chance {100 / settings['classes']:.0f}%"
    )
    image = f'<img alt="accuracy against latency" src="data:image/png;base64,{_plot(rows)}">' if rows else ""
    return (
        "<!doctype html>\n<html><head><meta charset='utf-8'><title>convzoo audio study</title></head><body>\n"
        f"<h1>Audio models: accuracy against deploy-form latency</h1>\n<p>{note}</p>\n"
        f"<table>{head}{body}</table>\n{image}\n</body></html>\n"
    )


def run_audio_study(
    models: list[str],
    *,
    data: str = "synth-sounds",
    data_root: str | None = None,
    epochs: int = 3,
    seeds: list[int] = (0,),
    out: str | Path = "study-audio",
    threads: int = 1,
    repeats: int = 20,
    options: dict[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Train every model of ``models`` on ``data`` for each seed, time each deploy form; write the report."""
    from convzoo.deploy.layout import deploy_form
    from convzoo.profile import count_macs, use_threads
    from convzoo.registry import MODELS
    from convzoo.train import TrainConfig, train

    for name in models:
        if MODELS.get(name).kind != "audio":
            raise ValueError(f"study --task audio: {name!r} is a {MODELS.get(name).kind} model, not an audio model")
    check_int(epochs, "epochs", "study --task audio")
    options = dict(options or {})
    if data == "synth-sounds":
        options.setdefault("per_class", 100)
    out = Path(out)
    runs, rows = [], []
    classes = 0
    for name in models:
        accuracies, last = [], None
        for seed in seeds:
            started = time.perf_counter()
            config = TrainConfig(
                model=name,
                task="audio",
                data=data,
                data_root=data_root,
                epochs=epochs,
                seed=seed,
                options=options,
                cfg=dict(STUDY_CFG.get(name, {})),
                out=str(out / "runs" / f"{name}-seed{seed}"),
                progress=progress,
            )
            result = train(config)
            classes = result.data.num_classes
            accuracies.append(result.test_accuracy)
            runs.append(
                {
                    "model": name,
                    "seed": seed,
                    "accuracy": result.test_accuracy,
                    "train_s": time.perf_counter() - started,
                }
            )
            last = result
        model = last.model.cpu().eval()
        example = torch.randn(1, 1, last.data.image_size[-1], generator=torch.Generator().manual_seed(0))
        with use_threads(threads):
            _, report = deploy_form(model, example, repeats=repeats, threads=threads)
        rows.append(
            {
                "model": name,
                "accuracy": statistics.fmean(accuracies),
                "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else None,
                "latency_ms": report.latency_ms,
                "trained_latency_ms": report.trained.median_ms,
                "layout": report.layout,
                "params": sum(p.numel() for p in model.parameters()),
                "macs": count_macs(model, example),
                "cfg": {k: list(v) if isinstance(v, tuple) else v for k, v in STUDY_CFG.get(name, {}).items()},
            }
        )
    settings = {
        "data": data,
        "epochs": epochs,
        "seeds": list(seeds),
        "threads": threads,
        "repeats": repeats,
        "options": options,
        "classes": classes,
        "cpu_threads_available": torch.get_num_threads(),
    }
    results = {"settings": settings, "rows": rows, "runs": runs}
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "report.html", _html(rows, settings))
    return results


def main(args: argparse.Namespace) -> int:
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(DEFAULT_MODELS)
    first = args.seed if args.seed is not None else 0
    seeds = list(range(first, first + (args.seeds or 1)))
    results = run_audio_study(
        models,
        data=args.data or "synth-sounds",
        data_root=args.data_root,
        epochs=args.epochs or 3,
        seeds=seeds,
        out=args.out or "study-audio",
        threads=args.threads or 1,
        repeats=getattr(args, "repeats", None) or 20,
        options=parse_assignments(args.option or []),
        progress=not getattr(args, "no_progress", False),
    )
    chance = 100 / max(results["settings"]["classes"], 1)
    print(f"audio study on {results['settings']['data']} (chance {chance:.0f}%):")
    for row in results["rows"]:
        print(
            f"  {row['model']:<22} accuracy {100 * row['accuracy']:5.1f}%  latency {row['latency_ms']:8.3f} ms  "
            f"{row['params']:>9,} params  {row['macs'] / 1e6:8.2f} MMACs"
        )
    print(f"wrote {Path(args.out or 'study-audio') / 'report.html'} and results.json")
    return 0
