"""Outputs of ``convzoo study``: ``results.json``, ``results.csv`` and ``report.html`` with the Pareto plot embedded."""

from __future__ import annotations

import base64
import csv
import html
import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

from convzoo.core.files import atomic_write_json, atomic_write_text

__all__ = ["write_study", "pareto_front", "COLUMNS"]

COLUMNS = ("op", "status", "kernel_size", "test_acc", "params", "macs", "latency_ms", "latency_iqr_ms", "efficiency")


def pareto_front(rows: list[Any]) -> list[str]:
    """Ops no other op beats on both accuracy (higher) and latency (lower), fastest first."""
    done = sorted((r for r in rows if r.status == "ok"), key=lambda r: (r.latency_ms, -r.test_acc))
    front, best = [], -1.0
    for row in done:
        if row.test_acc > best:
            front.append(row.op)
            best = row.test_acc
    return front


def _csv(rows: list[Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(["" if getattr(row, c) is None else getattr(row, c) for c in COLUMNS])
    return buffer.getvalue()


def _pareto_png(rows: list[Any], front: list[str], settings: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    done = [r for r in rows if r.status == "ok"]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.subplots()
    for rank, row in enumerate(sorted(done, key=lambda r: r.latency_ms)):
        on_front = row.op in front
        ax.scatter(row.latency_ms, 100 * row.test_acc, s=30 + row.params / 4000, alpha=0.8, zorder=3,
                   color="tab:red" if on_front else "tab:blue")  # fmt: skip
        # neighbours in latency take turns above right, below right and above left, so close labels do not overlap
        offset, align = [((5, 5), "left"), ((5, -12), "left"), ((-5, 8), "right")][rank % 3]
        ax.annotate(row.op, (row.latency_ms, 100 * row.test_acc), textcoords="offset points", xytext=offset, ha=align)
    points = sorted((r.latency_ms, 100 * r.test_acc) for r in done if r.op in front)
    if len(points) > 1:
        ax.plot(*zip(*points, strict=True), color="tab:red", lw=1, ls="--", label="Pareto front")
        ax.legend(loc="best")
    ax.set_xlabel(f"latency, ms (batch 1, {settings['threads_used']} threads, median of {settings['repeats']})")
    ax.set_ylabel(f"{settings['data']} test accuracy, %")
    epochs = settings["epochs"]
    ax.set_title(f"{settings['model']}, {epochs} epoch{'s' if epochs != 1 else ''} per op (marker area ∝ parameters)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(ScalarFormatter())
    ax.margins(x=0.12, y=0.08)
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode()


def _html(rows: list[Any], front: list[str], settings: dict[str, Any], png: str) -> str:
    def cell(value: Any, fmt: str = "{}") -> str:
        return "" if value is None else html.escape(fmt.format(value))

    body = []
    for r in rows:
        mark = " ★" if r.op in front else ""
        body.append(
            f"<tr><td>{html.escape(r.op)}{mark}</td><td>{cell(r.kernel_size)}</td>"
            f"<td>{cell(None if r.test_acc is None else 100 * r.test_acc, '{:.2f}')}</td>"
            f"<td>{cell(r.params, '{:,}')}</td><td>{cell(None if r.macs is None else r.macs / 1e6, '{:.2f}')}</td>"
            f"<td>{cell(r.latency_ms, '{:.3f}')}</td><td>{cell(r.latency_iqr_ms, '{:.3f}')}</td>"
            f"<td>{cell(r.efficiency, '{:.2f}')}</td><td>{html.escape(r.status)}</td></tr>"
        )
    settings_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in sorted(settings.items())
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convzoo study: {html.escape(settings["model"])}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:right}}td:first-child,th{{text-align:left}}</style>
</head><body>
<h1>Which convolution? {html.escape(settings["model"])} on {html.escape(settings["data"])}</h1>
<p>Each operator replaced every spatial mixer of the backbone and was trained with the same recipe and seed;
latency is one forward pass at batch 1 on this machine. ★ marks the Pareto front (no other op is both more
accurate and faster).</p>
<img alt="accuracy against latency" src="data:image/png;base64,{png}">
<table><tr><th>op</th><th>kernel</th><th>test acc %</th><th>params</th><th>MMACs</th><th>latency ms</th>
<th>IQR ms</th><th>roofline efficiency</th><th>status</th></tr>
{"".join(body)}</table>
<h2>Settings</h2><table>{settings_rows}</table>
</body></html>
"""


def write_study(rows: list[Any], settings: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the three outputs atomically into ``out``; returns their paths."""
    front = pareto_front(rows)
    results = {"settings": settings, "pareto_front": front, "rows": [asdict(r) for r in rows]}
    paths = {
        "json": atomic_write_json(out / "results.json", results),
        "csv": atomic_write_text(out / "results.csv", _csv(rows)),
    }
    paths["html"] = atomic_write_text(
        out / "report.html", _html(rows, front, settings, _pareto_png(rows, front, settings))
    )
    return paths
