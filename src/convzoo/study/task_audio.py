"""``convzoo study --task audio``: the audio models' test accuracy against the latency of their deploy form on
one-second clips, on the same data and budget.

Each model (``--models``, default :data:`DEFAULT_MODELS`) is trained ``--seeds`` times (seeds ``--seed``,
``--seed`` + 1, …) for ``--epochs`` epochs (default 10; at 3 the log-mel nets were still near chance) on
``--data`` (default ``synth-sounds``) with the audio task's recipe, at the study widths of :data:`STUDY_CFG`
(narrower than the registered, paper-sized configs, so a CPU finishes a study in minutes; ``--option per_class=N``
sizes synth-sounds, default 100 clips per class); then the trained model's deploy form
(:func:`convzoo.deploy.layout.deploy_form`: re-parameterised, BN folded, fastest layout) is timed at batch 1 on a
``(1, 1, T)`` clip with ``--threads`` threads (default 1), the median of ``--repeats`` interleaved passes.
``results.json`` and ``results.csv`` (every run and the per-model means) and ``report.html`` (a table and the
accuracy-latency plot) are written atomically to ``--out`` (default ``study-audio``).
"""

from __future__ import annotations

import argparse
import html
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from convzoo.core.options import parse_assignments
from convzoo.core.validate import check_int
from convzoo.study import outputs

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


COLUMNS = ("model", "accuracy", "accuracy_std", "latency_ms", "trained_latency_ms", "layout", "params", "macs")


def _html(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    cell = outputs.cell
    front = {r["model"] for r in outputs.pareto(rows, lambda r: r["latency_ms"], lambda r: r["accuracy"])}
    header = ("model", "accuracy %", "± std", "deploy latency ms", "trained-form ms", "layout", "params", "MMACs")
    cells = [
        (
            cell(r["model"]) + (" ★" if r["model"] in front else ""),
            cell(100 * r["accuracy"], "{:.1f}"),
            cell(None if r["accuracy_std"] is None else 100 * r["accuracy_std"], "{:.1f}"),
            cell(r["latency_ms"], "{:.3f}"),
            cell(r["trained_latency_ms"], "{:.3f}"),
            cell(r["layout"]),
            cell(r["params"], "{:,}"),
            cell(r["macs"] / 1e6, "{:.2f}"),
        )  # fmt: skip
        for r in rows
    ]
    points = [(r["model"], r["latency_ms"], 100 * r["accuracy"], r["model"] in front) for r in rows]
    plot = outputs.front_png(
        points,
        f"deploy-form latency per {settings['clip_s']:g}-s clip, batch 1, {settings['threads']} thread(s) (ms)",
        "test accuracy (%)",
    )
    note = (
        f"{settings['data']}, {settings['epochs']} epochs, seeds {settings['seeds']}, chance "
        f"{100 / max(settings['classes'], 1):.0f}%; models at the study widths (narrower than the papers'). "
        "★ marks the Pareto front on accuracy and deploy latency."
    )
    body = (
        f"<h1>Audio models: accuracy against deploy-form latency</h1>\n{outputs.machine_paragraph(settings)}\n"
        f"<p>{html.escape(note)}</p>\n{outputs.image(plot, 'accuracy against latency') if rows else ''}\n"
        f"{outputs.table(header, cells)}\n{outputs.settings_table(settings)}"
    )
    return outputs.page("convzoo study: audio", body)


def run_audio_study(
    models: list[str],
    *,
    data: str = "synth-sounds",
    data_root: str | None = None,
    epochs: int = 10,
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
    from convzoo.profile.machine import fingerprint
    from convzoo.profile.timing import LoadWatch
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
    classes, clip_s = 0, 1.0
    with LoadWatch() as watch:
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
                rate = result.data.extra.get("sample_rate")
                clip_s = result.data.image_size[-1] / rate if rate else clip_s
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
        "clip_s": clip_s,
        "cpu_threads_available": torch.get_num_threads(),
        "threads_used": threads,
        "torch": torch.__version__,
        "machine": fingerprint(threads),
        "load": watch.load.to_dict() if watch.load is not None else None,
        "load_line": outputs.load_line(watch.load),
    }
    results = {"settings": settings, "rows": rows, "runs": runs}
    report = _html(rows, settings)
    results["paths"] = {
        k: str(v)
        for k, v in outputs.write_outputs(out, results, csv=outputs.csv_text(COLUMNS, rows), report=report).items()
    }
    return results


def main(args: argparse.Namespace) -> int:
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list(DEFAULT_MODELS)
    first = args.seed if args.seed is not None else 0
    seeds = list(range(first, first + (args.seeds or 1)))
    results = run_audio_study(
        models,
        data=args.data or "synth-sounds",
        data_root=args.data_root,
        epochs=args.epochs or 10,
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
    print(f"wrote {Path(args.out or 'study-audio') / 'report.html'}, results.json and results.csv")
    return 0
