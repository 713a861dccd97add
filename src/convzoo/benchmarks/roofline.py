"""Suite ``roofline``: every 2-D grid operator at ConvNeXt-T stage 1, in its deployed form, against the roofline.

Each registered grid op (``kind="grid"``, 2 in its dims) is built C → C at batch 8, 96 channels, 56 × 56
(ConvNeXt-T stage 1, S67), stride 1, with its smallest kernel ≥ 3 (:func:`convzoo.ops.base.kernel_for`; 1 for an
op that takes no other), and turned into the form :func:`convzoo.deploy.optimize.optimize_with_report` chooses on
this machine (per-layer forms such as the dense kernel of a linear op, then eager, channels_last or a frozen graph
for the whole). Its latency (median, 1 thread) is set against its waterline under the measured peaks
(:func:`convzoo.profile.profiler.waterline`: the op's inputs, weights and outputs moved once and its MACs at the
compute roof): efficiency = waterline / latency. The goal is 50 % for every op; the notes under the table name the
ops that reach it and the ones that do not. ``--quick`` runs batch 1, 16 channels, 8 × 8.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from convzoo.benchmarks._shapes import CONVNEXT_T, QUICK, feature_map
from convzoo.deploy.optimize import optimize_with_report
from convzoo.ops.base import create_op, kernel_for
from convzoo.profile.bench import Column, Row, TablePlan
from convzoo.profile.machine import MachinePeaks
from convzoo.profile.profiler import waterline
from convzoo.profile.timing import interleaved
from convzoo.registry import OPS, SUITES

__all__ = ["GOAL", "grid_ops", "roofline_plan"]

GOAL = 0.5  # the share of the roofline every op should reach in its deployed form
BATCH = 8
COLUMNS = (
    Column("name", "op"),
    Column("kernel", "k", "d"),
    Column("form", "deployed form"),
    Column("gmacs", "GMACs", ".3f"),
    Column("mbytes", "MB moved", ".1f"),
    Column("intensity", "FLOP/B", ".1f"),
    Column("bound", "bound"),
    Column("roofline_ms", "roofline ms", ".3f"),
    Column("latency_ms", "ms", ".3f"),
    Column("iqr_ms", "IQR ms", ".3f"),
    Column("efficiency", "eff", ".0%"),
    Column("eager_ms", "as built ms", ".3f"),
    Column("goal", f"≥ {GOAL:.0%}"),
)


def grid_ops() -> list[str]:
    """The registered 2-D grid operators, in registry order."""
    return [entry.name for entry in OPS.entries() if entry.kind == "grid" and 2 in entry.dims]


def _form(plan: Any) -> str:
    """The chosen forms in words: per-layer choices other than the layer as trained, then the whole-model form
    (the model as given, where that won, uses none of the per-layer choices)."""
    if plan.whole_chosen == "as trained":
        return plan.whole_chosen
    layers = [form if name == "" else f"{name}: {form}" for name, form in plan.chosen.items() if form != "as trained"]
    return " + ".join([*layers, plan.whole_chosen])


def measure_op(
    op: str, batch: int, channels: int, side: int, *, repeats: int, warmup: int, peaks: MachinePeaks
) -> dict[str, Any]:
    """One row: ``op`` deployed by ``optimize_with_report``, timed against the op as built (interleaved), and its
    waterline under ``peaks``."""
    torch.manual_seed(0)
    kernel = kernel_for(op)
    try:
        module = create_op(op, channels, channels, kernel).eval()
    except ValueError:  # an op that takes no kernel ≥ 3 (pix mixes no pixels: 1 only) runs at 1
        kernel = 1
        module = create_op(op, channels, channels, kernel).eval()
    x = feature_map(batch, channels, side)
    with torch.no_grad():
        deployed, plan = optimize_with_report(module, x)
        roofline_ms, counts = waterline(module, x, peaks)
        as_built, timing = interleaved([lambda: module(x), lambda: deployed(x)], repeats=repeats, warmup=warmup)
    efficiency = roofline_ms / timing.median_ms
    return {
        "kernel": kernel,
        "form": _form(plan),
        "input_shape": [batch, channels, side, side],
        "macs": counts.macs,
        "gmacs": counts.macs / 1e9,
        "bytes": counts.bytes,
        "mbytes": counts.bytes / 1e6,
        "intensity": counts.flops / counts.bytes if counts.bytes else 0.0,
        "bound": peaks.bound(counts.flops, counts.bytes, x.dtype),
        "roofline_ms": roofline_ms,
        "latency_ms": timing.median_ms,
        "iqr_ms": timing.iqr_ms,
        "efficiency": efficiency,
        "eager_ms": as_built.median_ms,
        "goal": "yes" if efficiency >= GOAL else "no",
    }


def _notes(records: list[dict[str, Any]]) -> list[str]:
    reached = [r["name"] for r in records if r["efficiency"] >= GOAL]
    missed = sorted((r for r in records if r["efficiency"] < GOAL), key=lambda r: r["efficiency"])
    lines = [f"{len(reached)} of {len(records)} ops reach {GOAL:.0%} of the roofline: {', '.join(reached) or 'none'}."]
    if missed:
        below = ", ".join(f"{r['name']} {r['efficiency']:.0%} ({r['bound']}-bound)" for r in missed)
        lines.append(f"Below {GOAL:.0%}, worst first: {below}.")
    return lines


@SUITES.register(
    "roofline",
    kind="table",
    papers=("conv-efficiency", "convnext"),
    summary="every grid op at ConvNeXt-T stage 1 (8x96x56x56), deployed by optimize, against the roofline (1 thread)",
)
def roofline_plan(quick: bool = False, batch: int | None = None) -> TablePlan:
    """One row per 2-D grid op at ConvNeXt-T stage 1 (``quick``: 16 channels, 8 × 8), at 1 thread."""
    channels, side = QUICK[0] if quick else CONVNEXT_T[0]
    batch = batch or (1 if quick else BATCH)
    rows = [Row(f"{op}", partial(measure_op, op, batch, channels, side)) for op in grid_ops()]
    return TablePlan(rows=rows, columns=COLUMNS, threads=1, notes=_notes)
