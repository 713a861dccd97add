"""Reports of a :class:`~convzoo.profile.profiler.Profile`: terminal table, JSON, CSV, plots and an HTML page.

The plots are S54's: the roofline (each row a point, arithmetic intensity against achieved GFLOP/s, under the
measured roofs), the efficiency gap (per row, measured time against roofline time) and the waterline (the
model's floor, the sum of the roofline times, against the measured latency). They are drawn with matplotlib's
Agg canvas (no pyplot, so no global backend is touched). Every file is written atomically: a temp file in the
same directory, then ``os.replace``.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convzoo.core.files import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convzoo.profile.profiler import LayerCost, Profile

__all__ = [
    "efficiency_gap_figure",
    "format_table",
    "roofline_figure",
    "text_table",
    "to_csv",
    "to_json",
    "waterline_figure",
    "write_report",
]

MAX_GAP_ROWS = 50  # the efficiency-gap plot keeps the slowest rows beyond this many


def si(value: float, unit: str = "") -> str:
    """``value`` with an SI prefix, 3 significant digits: ``si(1.5e9, "B") == "1.5 GB"``, ``si(36864) == "36.9k"``."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}" if unit else f"{value / factor:.3g}{prefix}"
    return f"{value:.3g} {unit}" if unit else f"{value:.3g}"


def text_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, left: int | None = None) -> str:
    """A plain-text table with a rule under the header: the first ``left`` columns (default: all) left-aligned,
    the others (numbers) right-aligned; cells are ``str()`` of what is given."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    left = len(headers) if left is None else left

    def line(row: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return "\n".join([line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])])


def _row_cells(layer: LayerCost) -> list[str]:
    return [
        layer.label,
        layer.type,
        si(layer.params),
        si(layer.macs),
        si(layer.bytes, "B"),
        f"{layer.intensity:.1f}",
        f"{layer.median_ms:.3f}",
        f"{layer.iqr_ms:.3f}",
        f"{layer.gflops:.1f}",
        f"{layer.gbps:.1f}",
        f"{layer.roofline_ms:.3f}",
        layer.bound,
        f"{layer.efficiency:.0%}" if layer.roofline_ms > 0 else "-",
        _layout_cell(layer),
    ]


def _layout_cell(layer: LayerCost) -> str:
    """The faster layout and by how much (``CL``: channels-last), ``!`` where it is the other one by ≥ 1.2×."""
    speedup = layer.layout_speedup
    if speedup is None:
        return "-"
    faster = "CL" if layer.faster_layout == "channels_last" else "NCHW"
    return f"{faster} {max(speedup, 1 / speedup):.2f}×{' !' if layer.layout_flag else ''}"


HEADERS = ("layer", "type", "params", "MACs", "bytes", "FLOP/B", "ms", "IQR ms", "GFLOP/s", "GB/s", "roof ms")
HEADERS += ("bound", "eff", "faster layout")


def _summary_lines(profile: Profile) -> list[str]:
    from convzoo.profile.machine import fingerprint_line

    peaks = profile.peaks
    shapes = ", ".join("x".join(map(str, s)) for s in profile.input_shapes)
    bf16 = f"{peaks.bf16_gflops:.1f} GFLOP/s" if peaks.bf16_gflops is not None else "not native"
    load = f", load average {profile.load_average:.2f} at start" if profile.load_average is not None else ""
    lines = [
        f"{profile.model}: input {shapes} {profile.dtype}, {profile.threads} threads, "
        f"median of {profile.latency.repeats} after {profile.warmup} warm-up{load}",
        f"machine: {peaks.cpu}, fp32 {peaks.fp32_gflops:.1f} GFLOP/s, bf16 {bf16}, copy {peaks.copy_gbps:.1f} GB/s, "
        f"ridge {peaks.ridge:.1f} FLOP/B ({peaks.threads} threads{', quick peaks' if peaks.quick else ''})",
    ]
    if profile.fingerprint is not None:
        lines.append(f"fingerprint: {fingerprint_line(profile.fingerprint)}")
    warning = profile.load.warning(profile.threads) if profile.load is not None else None
    return lines + ([warning] if warning else [])


def _total_lines(profile: Profile) -> list[str]:
    lines = [
        f"totals: params {si(profile.params)}, MACs {si(profile.macs)} ({si(profile.flops)} FLOP), "
        f"bytes {si(profile.bytes, 'B')}, intensity {profile.intensity:.1f} FLOP/B",
        f"latency {profile.latency_ms:.3f} ms (IQR {profile.latency.iqr_ms:.3f}); sum of rows {profile.layers_ms:.3f} "
        f"ms; waterline {profile.waterline_ms:.3f} ms; model efficiency {profile.efficiency:.0%}",
    ]
    lines += _layout_lines(profile)
    if profile.waterline_ms > profile.latency_ms:
        lines.append(
            "warning: the waterline exceeds the measured latency, so the cached peaks are below what this run "
            "reached; measure them again with `convzoo machine --refresh`"
        )
    return lines


def _layout_lines(profile: Profile) -> list[str]:
    if profile.layout_speedup is None:
        return [profile.layout_note] if profile.layout_note else []
    speedup = profile.layout_speedup
    faster = profile.other_layout if speedup > 1 else profile.layout
    flagged = [layer.label for layer in profile.layers if layer.layout_flag]
    lines = [
        f"layout: input {profile.layout}; whole model {faster} faster by {max(speedup, 1 / speedup):.2f}× "
        f"({profile.latency_ms:.3f} ms {profile.layout}, {profile.other_layout_latency.median_ms:.3f} ms "
        f"{profile.other_layout}, interleaved)"
    ]
    if flagged:
        named = ", ".join(flagged[:8]) + (" …" if len(flagged) > 8 else "")
        lines.append(f"! {profile.other_layout} is ≥ {profile.layout_flag}× faster on {len(flagged)} rows: {named}")
    return lines


def format_table(profile: Profile) -> str:
    """The terminal report: the run and machine, one line per row, and the totals with the waterline."""
    table = text_table(HEADERS, [_row_cells(layer) for layer in profile.layers], left=2)
    return "\n".join([*_summary_lines(profile), "", table, "", *_total_lines(profile)])


def to_json(profile: Profile) -> str:
    return json.dumps(profile.to_dict(), indent=2) + "\n"


CSV_FIELDS = (
    "name", "type", "own_ops", "calls", "params", "macs", "flops", "bytes", "intensity", "macs_source",
    "median_ms", "iqr_ms", "gflops", "gbps", "roofline_ms", "bound", "efficiency", "layout", "other_layout_ms",
    "layout_speedup", "faster_layout", "layout_flag",
)  # fmt: skip


def to_csv(profile: Profile) -> str:
    """One CSV line per row, fields :data:`CSV_FIELDS` (times in ms, rates in 1e9 per second)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for layer in profile.layers:
        writer.writerow(layer.to_dict())
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def roofline_figure(profile: Profile) -> Figure:
    """Each row with FLOPs a point (intensity, achieved GFLOP/s), sized by its share of time, under the roofs."""
    peaks = profile.peaks
    figure = _figure(7.5, 5.0)
    axes = figure.add_subplot()
    points = [r for r in profile.layers if r.flops > 0 and r.bytes > 0 and r.median_ms > 0]
    intensities = [r.intensity for r in points] or [peaks.ridge]
    low = min(min(intensities), peaks.ridge) / 4
    high = max(max(intensities), peaks.ridge) * 4
    xs = [low * (high / low) ** (i / 200) for i in range(201)]
    axes.plot(xs, [min(peaks.fp32_gflops, peaks.copy_gbps * x) for x in xs], color="black", label="fp32 roof")
    if peaks.bf16_gflops is not None:
        roof = [min(peaks.bf16_gflops, peaks.copy_gbps * x) for x in xs]
        axes.plot(xs, roof, color="black", linestyle="--", label="bf16 roof")
    total = sum(r.median_ms for r in points) or 1.0
    for bound, color in (("compute", "tab:blue"), ("memory", "tab:orange")):
        chosen = [r for r in points if r.bound == bound]
        if chosen:
            sizes = [20 + 400 * r.median_ms / total for r in chosen]
            xs, ys = [r.intensity for r in chosen], [r.gflops for r in chosen]
            axes.scatter(xs, ys, s=sizes, color=color, alpha=0.6, edgecolors="none", label=f"{bound}-bound layers")
    for r in sorted(points, key=lambda r: r.median_ms, reverse=True)[:5]:
        axes.annotate(r.label, (r.intensity, r.gflops), fontsize=7, xytext=(4, 4), textcoords="offset points")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (FLOP / byte moved)")
    axes.set_ylabel("achieved GFLOP/s")
    hidden = len(profile.layers) - len(points)
    note = f"; {hidden} rows without FLOPs not shown" if hidden else ""
    axes.set_title(f"{profile.model}: roofline, {profile.threads} threads{note}", fontsize=10)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return figure


def _gap_rows(profile: Profile) -> tuple[list[LayerCost], str]:
    rows = list(profile.layers)
    if len(rows) <= MAX_GAP_ROWS:
        return rows, ""
    keep = {id(r) for r in sorted(rows, key=lambda r: r.median_ms, reverse=True)[:MAX_GAP_ROWS]}
    return [r for r in rows if id(r) in keep], f" ({MAX_GAP_ROWS} slowest of {len(rows)} rows)"


def efficiency_gap_figure(profile: Profile) -> Figure:
    """Per row in execution order: measured time (light) over roofline time (dark); the rest is the gap."""
    rows, note = _gap_rows(profile)
    figure = _figure(8.0, max(3.0, 0.22 * len(rows) + 1.4))
    axes = figure.add_subplot()
    positions = list(range(len(rows)))
    axes.barh(positions, [r.median_ms for r in rows], color="tab:red", alpha=0.35, label="measured")
    axes.barh(positions, [min(r.roofline_ms, r.median_ms) for r in rows], color="tab:green", label="roofline")
    axes.set_yticks(positions, [r.label for r in rows], fontsize=6)
    axes.invert_yaxis()
    axes.set_xlabel("time per forward pass (ms)")
    axes.set_title(f"{profile.model}: efficiency gap per layer{note}", fontsize=10)
    axes.grid(True, axis="x", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return figure


def waterline_figure(profile: Profile) -> Figure:
    """The waterline (compute- and memory-bound parts) against the sum of the rows and the model's latency."""
    compute = sum(r.roofline_ms for r in profile.layers if r.bound == "compute")
    memory = profile.waterline_ms - compute
    figure = _figure(7.5, 3.2)
    axes = figure.add_subplot()
    axes.barh([2], [compute], color="tab:blue", label="waterline: compute-bound rows")
    axes.barh([2], [memory], left=[compute], color="tab:orange", label="waterline: memory-bound rows")
    axes.barh([1], [profile.layers_ms], color="tab:gray", alpha=0.6)
    latency = profile.latency
    quartiles = [[latency.median_ms - latency.q1_ms], [latency.q3_ms - latency.median_ms]]
    axes.barh([0], [latency.median_ms], xerr=quartiles, color="tab:red", alpha=0.6)
    axes.set_yticks([0, 1, 2], ["model, measured", "sum of rows (hooked)", "waterline (Σ roofline)"], fontsize=8)
    axes.set_xlabel("ms per forward pass")
    title = f"{profile.model}: waterline {profile.waterline_ms:.3g} ms, measured {latency.median_ms:.3g} ms"
    axes.set_title(f"{title}, efficiency {profile.efficiency:.0%}", fontsize=10)
    figure.legend(fontsize=7, loc="outside lower center", ncols=2)
    axes.grid(True, axis="x", alpha=0.3)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


PLOTS = {"roofline": roofline_figure, "efficiency_gap": efficiency_gap_figure, "waterline": waterline_figure}


def _html(profile: Profile, images: dict[str, str]) -> str:
    escape = html.escape
    header = "".join(f"<th>{escape(h)}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in _row_cells(layer)) + "</tr>" for layer in profile.layers
    )
    notes = "".join(f"<p>{escape(line)}</p>" for line in [*_summary_lines(profile), *_total_lines(profile)])
    figures = "".join(
        f'<figure><img src="{escape(file)}" alt="{escape(kind)} plot"><figcaption>{escape(kind)}</figcaption></figure>'
        for kind, file in images.items()
    )
    style = (
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:nth-child(-n+2){text-align:left}"
        "img{max-width:100%}figure{margin:1em 0}"
    )
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>convzoo profile: {escape(profile.model)}</title>"
        f"<style>{style}</style></head><body><h1>{escape(profile.model)}</h1>{notes}{figures}"
        f"<h2>Layers</h2><table><tr>{header}</tr>{body}</table>"
        "<p>MACs from torch.utils.flop_counter (per-op formulas where it sees nothing); bytes are inputs, weights "
        "and outputs once per call; roofline time = max(FLOPs / peak, bytes / bandwidth); efficiency = roofline / "
        "measured; waterline = sum of roofline times; faster layout: NCHW or CL (channels-last) and by how much, "
        "timed interleaved, ! where the other layout is at least 1.2× faster.</p></body></html>\n"
    )


def write_report(profile: Profile, out_dir: str | Path) -> dict[str, Path]:
    """Write ``profile.json``, ``profile.csv``, the three PNG plots and ``report.html`` (last) into ``out_dir``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"profile: --out must be a directory, got the file {str(out)!r}")
    written = {
        "json": atomic_write_text(out / "profile.json", to_json(profile)),
        "csv": atomic_write_text(out / "profile.csv", to_csv(profile)),
    }
    images = {}
    for kind, draw in PLOTS.items():
        written[kind] = atomic_write_bytes(out / f"{kind}.png", _png(draw(profile)))
        images[kind] = f"{kind}.png"
    written["html"] = atomic_write_text(out / "report.html", _html(profile, images))
    return written
