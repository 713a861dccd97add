"""What every study writes, shared by the classify study and the task studies (sr, seg, audio, wave).

A study folder holds ``results.json`` (settings and rows), ``results.csv`` (one line per row) and ``report.html``
(one self-contained page: the machine and load line, the table, embedded PNG plots, the settings), each written
atomically (:mod:`convzoo.core.files`), so an interrupted study never leaves a half-written file. The pieces here
render those outputs; each study decides its columns, its plots and its words.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from convzoo.core.files import atomic_write_json, atomic_write_text

__all__ = [
    "cell",
    "csv_text",
    "front_png",
    "image",
    "load_line",
    "machine_line",
    "machine_paragraph",
    "page",
    "pareto",
    "png",
    "settings_table",
    "table",
    "write_outputs",
]

T = TypeVar("T")

STYLE = (
    "body{font-family:sans-serif;max-width:80em;margin:2em auto}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}td:first-child,th{text-align:left}"
    "tr.front td:first-child{font-weight:bold}.warning{color:#a40}"
)


def cell(value: Any, fmt: str = "{}") -> str:
    """``value`` formatted and HTML-escaped; an empty cell for ``None``."""
    return "" if value is None else html.escape(fmt.format(value))


def table(header: Sequence[str], rows: Iterable[Sequence[str]], front: Iterable[bool] | None = None) -> str:
    """An HTML table: ``header`` texts (escaped here), ``rows`` of cells already rendered (see :func:`cell`);
    rows flagged in ``front`` get the ``front`` class (bold first cell)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    flags = list(front) if front is not None else None
    body = []
    for index, row in enumerate(rows):
        marked = flags is not None and flags[index]
        body.append(f"<tr{' class=front' if marked else ''}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table><tr>{head}</tr>\n" + "\n".join(body) + "</table>"


def settings_table(settings: dict[str, Any]) -> str:
    """Every setting as a row (the machine's and the load's fields flattened as ``machine.cpu`` ...), sorted."""
    shown = {k: v for k, v in settings.items() if k not in ("machine", "load")}
    shown |= {f"machine.{k}": v for k, v in (settings.get("machine") or {}).items()}
    shown |= {f"load.{k}": v for k, v in (settings.get("load") or {}).items()}
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in sorted(shown.items())
    )
    return f"<h2>Settings</h2><table>{rows}</table>"


def load_line(load: Any) -> str:
    """``"1-min load 0.10 before, 1.90 after on 2 cpus"`` (and the cores other processes kept busy, when known)."""
    if load is None:
        return "load unknown"
    others = getattr(load, "others_cores", None)
    busy = "" if others is None else f", other processes kept {others:.2f} cores busy"
    return f"1-min load {load.load_before:.2f} before, {load.load_after:.2f} after on {load.cpus} cpus{busy}"


def machine_line(settings: dict[str, Any]) -> str:
    """The machine and conditions of the run, one line: CPU, ISA flags, cpus, threads, torch, oneDNN."""
    from convzoo.profile.machine import fingerprint_line

    machine = settings.get("machine")
    if machine:
        return fingerprint_line(machine)
    return f"{settings.get('threads_used')} threads, torch {settings.get('torch')}"


def machine_paragraph(settings: dict[str, Any]) -> str:
    """Where and under what load the figures were taken, and the load warning when there was one."""
    load = settings.get("load_line")
    text = f"Measured on {machine_line(settings)}" + (f"; {load}." if load else ".")
    warning = settings.get("load_warning")
    return f'<p class="machine">{html.escape(text)}</p>' + (
        f'\n<p class="warning">{html.escape(warning)}</p>' if warning else ""
    )


def page(title: str, body: str) -> str:
    """A self-contained HTML page titled ``title`` (escaped here) around ``body`` (already HTML)."""
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head><body>\n{body}\n</body></html>\n"
    )


def png(figure: Any) -> str:
    """A matplotlib figure as base64 PNG text."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode()


def image(png_text: str, alt: str) -> str:
    """An ``<img>`` embedding base64 PNG text."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png_text}">'


def pareto(items: Iterable[T], cost: Callable[[T], float | None], score: Callable[[T], float | None]) -> list[T]:
    """The items no other beats on both ``score`` (higher) and ``cost`` (lower), cheapest first; items without a
    cost or a score are left out."""
    done = sorted(
        (i for i in items if cost(i) is not None and score(i) is not None), key=lambda i: (cost(i), -score(i))
    )
    front, best = [], -float("inf")
    for item in done:
        if score(item) > best:
            front.append(item)
            best = score(item)
    return front


def front_png(points: Sequence[tuple[str, float, float, bool]], xlabel: str, ylabel: str, title: str = "") -> str:
    """One scatter of ``(name, latency, score, on_front)`` points, log latency axis, the front in red and joined."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = figure.subplots()
    for rank, (name, x, y, on_front) in enumerate(sorted(points, key=lambda p: p[1])):
        ax.scatter(x, y, s=30, color="tab:red" if on_front else "tab:blue", zorder=3)
        offset, align = [((5, 5), "left"), ((5, -12), "left"), ((-5, 8), "right")][rank % 3]
        ax.annotate(name, (x, y), textcoords="offset points", xytext=offset, ha=align, fontsize=8)
    front = sorted((x, y) for _, x, y, on in points if on)
    if len(front) > 1:
        ax.plot(*zip(*front, strict=True), color="tab:red", lw=1, ls="--", label="Pareto front")
        ax.legend(loc="best")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return png(figure)


def csv_text(columns: Sequence[str], rows: Iterable[Any]) -> str:
    """``columns`` of each row (a dict or an object with those attributes) as CSV; ``None`` as an empty field."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        values = [row.get(c) if isinstance(row, dict) else getattr(row, c, None) for c in columns]
        writer.writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def write_outputs(
    out: Path, results: dict[str, Any], *, csv: str | None = None, report: str | None = None
) -> dict[str, Path]:
    """``results.json`` (and ``results.csv``, ``report.html`` when given) written atomically into ``out``."""
    paths = {"json": atomic_write_json(Path(out) / "results.json", results)}
    if csv is not None:
        paths["csv"] = atomic_write_text(Path(out) / "results.csv", csv)
    if report is not None:
        paths["html"] = atomic_write_text(Path(out) / "report.html", report)
    return paths
