"""Outputs of ``convzoo study``: ``results.json``, ``results.csv`` and ``report.html`` (both plots embedded), written
atomically. Every output names the machine that produced it: CPU model, ISA flags (AVX-512, VNNI, AMX), threads,
torch and oneDNN versions, and the load around the run."""

from __future__ import annotations

import html
from dataclasses import asdict
from pathlib import Path
from typing import Any

from convzoo.study.outputs import csv_text, machine_line, page, png, settings_table, write_outputs
from convzoo.study.outputs import pareto as _pareto

__all__ = ["COLUMNS", "accuracy_text", "machine_line", "pareto_front", "write_study"]

COLUMNS = (
    "op",
    "status",
    "kernel_size",
    "test_acc",
    "test_acc_std",
    "test_acc_min",
    "test_acc_max",
    "params",
    "macs",
    "deploy_macs",
    "latency_ms",
    "latency_iqr_ms",
    "layout",
    "train_latency_ms",
    "speedup",
    "efficiency",
    "timed_on",
)


def pareto_front(rows: list[Any]) -> list[str]:
    """Ops no other op beats on both mean accuracy (higher) and deploy latency (lower), fastest first."""
    done = [r for r in rows if r.status == "ok"]
    return [r.op for r in _pareto(done, lambda r: r.latency_ms, lambda r: r.test_acc)]


def accuracy_text(row: Any) -> str:
    """``"97.33 ± 0.45"`` (percent, mean ± sample std over the seeds); the mean alone for one seed."""
    if row.test_acc is None:
        return ""
    spread = "" if getattr(row, "test_acc_std", None) is None else f" ± {100 * row.test_acc_std:.2f}"
    return f"{100 * row.test_acc:.2f}{spread}"


def _std_pct(row: Any) -> float:
    return 0.0 if row.test_acc_std is None else 100 * row.test_acc_std


def _seeds_phrase(settings: dict[str, Any]) -> str:
    seeds = settings.get("seeds", 1)
    return "1 seed" if seeds == 1 else f"mean ± std of {seeds} seeds"


def _pareto_png(rows: list[Any], front: list[str], settings: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    done = [r for r in rows if r.status == "ok"]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    for rank, row in enumerate(sorted(done, key=lambda r: r.latency_ms)):
        color = "tab:red" if row.op in front else "tab:blue"
        ax.errorbar(row.latency_ms, 100 * row.test_acc, yerr=_std_pct(row), fmt="none", ecolor=color, alpha=0.5)
        ax.scatter(row.latency_ms, 100 * row.test_acc, s=30 + row.params / 4000, alpha=0.8, zorder=3, color=color)
        # neighbours in latency take turns above right, below right and above left, so close labels do not overlap
        offset, align = [((5, 5), "left"), ((5, -12), "left"), ((-5, 8), "right")][rank % 3]
        ax.annotate(row.op, (row.latency_ms, 100 * row.test_acc), textcoords="offset points", xytext=offset, ha=align)
    points = sorted((r.latency_ms, 100 * r.test_acc) for r in done if r.op in front)
    if len(points) > 1:
        ax.plot(*zip(*points, strict=True), color="tab:red", lw=1, ls="--", label="Pareto front")
        ax.legend(loc="best")
    ax.set_xlabel(
        f"deploy latency, ms (batch 1, fastest layout, {settings['threads_used']} threads, "
        f"median of {settings['repeats']})"
    )
    ax.set_ylabel(f"{settings['data']} test accuracy, % ({_seeds_phrase(settings)})")
    epochs = settings["epochs"]
    ax.set_title(f"{settings['model']}, {epochs} epoch{'s' if epochs != 1 else ''} per op (marker area ∝ parameters)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.margins(x=0.12, y=0.08)
    ax.grid(alpha=0.3)
    return png(figure)


def _counts_png(rows: list[Any], front: list[str], settings: dict[str, Any]) -> str:
    """Mean accuracy against the trained op's parameters (left) and MACs (right), both log scale."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter, LogLocator, NullFormatter

    done = [r for r in rows if r.test_acc is not None and r.params is not None]
    figure = Figure(figsize=(9, 4), layout="constrained")
    axes = figure.subplots(1, 2, sharey=True)
    for ax, attribute, label in ((axes[0], "params", "parameters"), (axes[1], "macs", "MACs per image")):
        for rank, row in enumerate(sorted(done, key=lambda r: getattr(r, attribute))):
            x, y = getattr(row, attribute), 100 * row.test_acc
            color = "tab:red" if row.op in front else "tab:blue"
            ax.errorbar(x, y, yerr=_std_pct(row), fmt="o", color=color, ecolor=color, alpha=0.8, ms=5)
            offset, align = [((5, 5), "left"), ((5, -12), "left"), ((-5, 8), "right")][rank % 3]
            ax.annotate(row.op, (x, y), textcoords="offset points", xytext=offset, ha=align, fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))  # labelled 1, 2, 5 per decade: 20k, 50k, 100k
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"{label} (trained model)")
        ax.margins(x=0.15, y=0.08)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{settings['data']} test accuracy, % ({_seeds_phrase(settings)})")
    figure.suptitle("accuracy against size and work (red: on the latency Pareto front)")
    return png(figure)


def _html(rows: list[Any], front: list[str], settings: dict[str, Any], pngs: tuple[str, str] | None) -> str:
    def cell(value: Any, fmt: str = "{}") -> str:
        return "" if value is None else html.escape(fmt.format(value))

    body = []
    for r in rows:
        mark = " ★" if r.op in front else ""
        body.append(
            f"<tr><td>{html.escape(r.op)}{mark}</td><td>{cell(r.kernel_size)}</td>"
            f"<td>{html.escape(accuracy_text(r))}</td>"
            f"<td>{cell(None if r.test_acc_min is None else 100 * r.test_acc_min, '{:.2f}')}–"
            f"{cell(None if r.test_acc_max is None else 100 * r.test_acc_max, '{:.2f}')}</td>"
            f"<td>{cell(r.params, '{:,}')}</td><td>{cell(None if r.macs is None else r.macs / 1e6, '{:.2f}')}</td>"
            f"<td>{cell(None if r.deploy_macs is None else r.deploy_macs / 1e6, '{:.2f}')}</td>"
            f"<td>{cell(r.latency_ms, '{:.3f}')}</td><td>{cell(r.layout)}</td>"
            f"<td>{cell(r.latency_iqr_ms, '{:.3f}')}</td><td>{cell(r.train_latency_ms, '{:.3f}')}</td>"
            f"<td>{cell(r.speedup, '{:.2f}×')}</td>"
            f"<td>{cell(r.efficiency, '{:.2f}')}</td><td>{html.escape(r.status)}</td></tr>"
        )
    warning = settings.get("load_warning")
    warning_html = f'<p class="warning">{html.escape(warning)}</p>' if warning else ""
    seeds = settings.get("seeds", 1)
    timed_on = sorted({r.timed_on for r in rows if getattr(r, "timed_on", None)})
    timed_html = (
        f'<p class="timed">Latencies timed by {html.escape(settings.get("latency_timed_by") or "one process")}: '
        f"{html.escape('; '.join(timed_on))}. Trained on {settings.get('ranks', 1)} process(es).</p>"
        if timed_on
        else ""
    )
    if pngs is None:
        finished = sum(r.status == "ok" for r in rows)
        plots = (
            f'<p class="partial">Partial report, rewritten after every run: {finished} of {len(rows)} ops finished '
            "and timed so far; the plots are drawn when the study ends.</p>"
        )
    else:
        plots = (
            f'<img alt="accuracy against latency" src="data:image/png;base64,{pngs[0]}">\n'
            f'<img alt="accuracy against parameters and MACs" src="data:image/png;base64,{pngs[1]}">'
        )
    body = f"""<h1>Which convolution? {html.escape(settings["model"])} on {html.escape(settings["data"])}</h1>
<p class="machine">Measured on {html.escape(machine_line(settings))}.</p>
{timed_html}
{warning_html}
<p>Each operator replaced every spatial mixer of the backbone and was trained with the same recipe, once per seed
({seeds} seed{"s" if seeds != 1 else ""}); accuracy is the mean ± sample standard deviation (n − 1) over the
seeds, with the min–max beside it. Latency is one forward pass at batch 1 on this machine of the op's
<em>deploy form</em> (re-parameterised, BatchNorms folded, in the memory layout measured faster), timed
interleaved with the model as trained (eager, NCHW; the training-form column). Params and MACs are the trained
model's; deploy MMACs are what its deploy form computes. ★ marks the Pareto front on mean accuracy and deploy
latency (no other op is both more accurate and faster).</p>
{plots}
<table><tr><th>op</th><th>kernel</th><th>test acc % (mean ± std)</th><th>min–max %</th><th>params</th>
<th>MMACs</th><th>deploy MMACs</th><th>deploy latency ms</th><th>layout</th><th>IQR ms</th>
<th>training-form latency ms</th><th>speed-up</th><th>roofline efficiency</th><th>status</th></tr>
{"".join(body)}</table>
{settings_table(settings)}"""
    return page(f"convzoo study: {settings['model']}", body)


def write_study(rows: list[Any], settings: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the three outputs atomically into ``out``; returns their paths. A partial report (``settings["partial"]``,
    rewritten after every run of a study) has the table but not the plots, which take seconds to draw."""
    front = pareto_front(rows)
    results = {
        "settings": settings,
        "machine_line": machine_line(settings),
        "pareto_front": front,
        "rows": [asdict(r) | {"speedup": r.speedup} for r in rows],
    }
    pngs = None if settings.get("partial") else (_pareto_png(rows, front, settings), _counts_png(rows, front, settings))
    report = _html(rows, front, settings, pngs)
    return write_outputs(out, results, csv=csv_text(COLUMNS, rows), report=report)
