"""The pair harness behind ``convzoo bench``: each case is a pair (A, B) timed interleaved, A B A B ..., in one run.

A suite is a function ``cases(quick=False, batch=None) -> list[Case]`` registered in
``convzoo.registry.SUITES`` (the suites live in :mod:`convzoo.benchmarks`, one module each). For every case the
harness builds both modules (seeded, eval mode, ``no_grad``), checks they run on the input (and agree where the
case says they compute the same function), counts params, MACs and bytes (inputs + weights + outputs once), then
times them interleaved: ``warmup`` untimed rounds, then the median of ``repeats`` ≥ 20 rounds. The ratio
``time A / time B`` of the medians is what a suite reports; absolute times are for reading, not for comparing
across runs. Efficiency is roofline time / measured time under this machine's peaks
(:mod:`convzoo.profile.machine`). A case whose modules cannot be built at its shape is skipped with the reason.

A suite registered with ``kind="table"`` measures single things against the roofline instead of pairs: its function
returns a :class:`TablePlan` whose :class:`Row` s each measure themselves into a record, printed as one table line.

Every run states its conditions (:class:`RunConditions`): the machine's fingerprint
(:func:`convzoo.profile.machine.fingerprint`), the threads and why that many (by default no more than the idle
cores, :func:`convzoo.profile.timing.choose_threads`), the load average before and after and the CPU time other
processes used meanwhile; a run that shared its cores says so in a warning line under the header.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from convzoo.core.files import atomic_write_text
from convzoo.core.validate import check_int, is_int
from convzoo.profile.counting import count_macs, eval_no_grad, tensor_bytes
from convzoo.profile.machine import MachinePeaks, fingerprint, fingerprint_line, machine_peaks
from convzoo.profile.timing import Load, LoadWatch, choose_threads, interleaved, use_threads

__all__ = [
    "MIN_REPEATS",
    "Case",
    "CaseResult",
    "Column",
    "Row",
    "RunConditions",
    "Side",
    "SuiteResult",
    "TablePlan",
    "TableResult",
    "run_case",
    "run_suite",
    "select_suites",
    "suite_case_names",
    "suite_threads",
]

MIN_REPEATS = 20


@dataclass(frozen=True)
class Case:
    """One comparison: ``build()`` returns ``(module_a, module_b, input)``; ``same_output`` asks the harness to
    check that A and B compute the same function (a reparameterisation) before timing them."""

    name: str
    a: str
    b: str
    build: Callable[[], tuple[nn.Module, nn.Module, Tensor]]
    same_output: bool = False


@dataclass(frozen=True)
class Side:
    """One module of a case: counts per forward pass and its measured and roofline times (ms)."""

    label: str
    params: int
    macs: int
    bytes: int
    median_ms: float
    iqr_ms: float
    roofline_ms: float

    @property
    def efficiency(self) -> float:
        return self.roofline_ms / self.median_ms if self.median_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "efficiency": self.efficiency}


@dataclass(frozen=True)
class CaseResult:
    name: str
    input_shape: tuple[int, ...]
    a: Side
    b: Side

    @property
    def ratio(self) -> float:
        """``time A / time B`` (medians): below 1, A is faster."""
        return self.a.median_ms / self.b.median_ms

    @property
    def speedup(self) -> float:
        """``time B / time A``: how many times faster A is than B."""
        return self.b.median_ms / self.a.median_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "ratio": self.ratio,
            "speedup": self.speedup,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
        }


@dataclass(frozen=True)
class RunConditions:
    """What a suite ran on and beside: the machine's fingerprint, why it used its thread count, and the load."""

    fingerprint: dict[str, Any]
    threads_reason: str
    load: Load

    @property
    def warning(self) -> str | None:
        return self.load.warning(self.fingerprint["threads"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "threads_reason": self.threads_reason,
            "load": self.load.to_dict(),
            "warning": self.warning,
        }

    def lines(self) -> list[str]:
        """The header lines: machine, threads and why, load and other processes' CPU time, the warning if any."""
        load = self.load
        before = "unknown" if load.load_before is None else f"{load.load_before:.2f}"
        after = "unknown" if load.load_after is None else f"{load.load_after:.2f}"
        others = (
            ""
            if load.others_cores is None
            else f"; other processes used {load.others_cpu_s:.1f} cpu-s over "
            f"{load.wall_s:.1f} s ({load.others_cores:.2f} cores)"
        )
        lines = [
            f"machine: {fingerprint_line(self.fingerprint)}",
            f"threads: {self.fingerprint['threads']} ({self.threads_reason}); "
            f"load average {before} before, {after} after{others}",
        ]
        return lines + ([self.warning] if self.warning else [])


def _header(suite: str, quick: bool, conditions: RunConditions, timing: str, peaks: MachinePeaks) -> list[str]:
    return [
        f"### convzoo bench {suite}{' --quick' if quick else ''}",
        "",
        *(f"{line}  " for line in conditions.lines()),  # two spaces: a markdown line break
        f"{conditions.fingerprint['threads']} threads, {timing}; roofs: fp32 {peaks.fp32_gflops:.1f} GFLOP/s, copy "
        f"{peaks.copy_gbps:.1f} GB/s{' (quick peaks)' if peaks.quick else ''}",
        "",
    ]


def _run_dict(suite: str, quick: bool, threads: int, repeats: int, warmup: int, peaks, conditions) -> dict[str, Any]:
    return {
        "suite": suite,
        "quick": quick,
        "threads": threads,
        "repeats": repeats,
        "warmup": warmup,
        "torch": torch.__version__,
        "load_average": conditions.load.load_before,
        **conditions.to_dict(),
        "machine": peaks.to_dict(),
    }


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    quick: bool
    threads: int
    repeats: int
    warmup: int
    peaks: MachinePeaks
    results: tuple[CaseResult, ...]
    skipped: tuple[tuple[str, str], ...]
    conditions: RunConditions

    def to_dict(self) -> dict[str, Any]:
        run = _run_dict(self.suite, self.quick, self.threads, self.repeats, self.warmup, self.peaks, self.conditions)
        return {
            **run,
            "cases": [r.to_dict() for r in self.results],
            "skipped": [{"name": n, "reason": why} for n, why in self.skipped],
        }

    def markdown(self) -> str:
        """The ratio table, one line per case, with the run's conditions above it."""
        timing = f"median of {self.repeats} interleaved repeats (A B A B ...) after {self.warmup} warm-up"
        lines = [
            *_header(self.suite, self.quick, self.conditions, timing, self.peaks),
            "| case | A | B | A ms | B ms | A/B time | B/A speed-up | A params | B params | A MMACs | B MMACs "
            "| A eff | B eff |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in self.results:
            lines.append(
                f"| {r.name} | {r.a.label} | {r.b.label} | {r.a.median_ms:.3f} | {r.b.median_ms:.3f} "
                f"| {r.ratio:.2f} | {r.speedup:.2f}× | {r.a.params:,} | {r.b.params:,} | {r.a.macs / 1e6:,.1f} "
                f"| {r.b.macs / 1e6:,.1f} | {r.a.efficiency:.0%} | {r.b.efficiency:.0%} |"
            )
        if self.skipped:
            lines += ["", "Skipped:"] + [f"- {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


@dataclass(frozen=True)
class Column:
    """One column of a table suite: the record's ``key``, its ``header`` and a format spec (``".3f"``, ``".0%"``)."""

    key: str
    header: str
    format: str = ""

    def cell(self, record: dict[str, Any]) -> str:
        value = record.get(self.key)
        return "-" if value is None else format(value, self.format)


@dataclass(frozen=True)
class Row:
    """One measured line of a table suite: ``measure(repeats=, warmup=, peaks=)`` returns its record (a dict)."""

    name: str
    measure: Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class TablePlan:
    """What a ``kind="table"`` suite's function returns: its rows, columns, the thread count it is defined at
    (``None``: the harness's default) and ``notes(records) -> lines`` printed under the table."""

    rows: list[Row]
    columns: tuple[Column, ...]
    threads: int | None = None
    notes: Callable[[list[dict[str, Any]]], list[str]] | None = None


@dataclass(frozen=True)
class TableResult:
    suite: str
    quick: bool
    threads: int
    repeats: int
    warmup: int
    peaks: MachinePeaks
    columns: tuple[Column, ...]
    records: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    conditions: RunConditions

    def to_dict(self) -> dict[str, Any]:
        run = _run_dict(self.suite, self.quick, self.threads, self.repeats, self.warmup, self.peaks, self.conditions)
        return {
            **run,
            "rows": list(self.records),
            "notes": list(self.notes),
            "skipped": [{"name": n, "reason": why} for n, why in self.skipped],
        }

    def markdown(self) -> str:
        """One table line per row, the conditions above, the suite's notes and the skipped rows below."""
        timing = f"median of {self.repeats} repeats after {self.warmup} warm-up"
        lines = [
            *_header(self.suite, self.quick, self.conditions, timing, self.peaks),
            "| " + " | ".join(c.header for c in self.columns) + " |",
            "|" + "|".join("---" if not c.format else "---:" for c in self.columns) + "|",
        ]
        lines += ["| " + " | ".join(c.cell(record) for c in self.columns) + " |" for record in self.records]
        if self.notes:
            lines += ["", *self.notes]
        if self.skipped:
            lines += ["", "Skipped:"] + [f"- {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        return atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")


def _side(label: str, module: nn.Module, x: Tensor, timing, peaks: MachinePeaks) -> Side:
    out = module(x)
    weights = {id(t): t for t in (*module.parameters(), *module.buffers())}
    moved = tensor_bytes(x) + tensor_bytes(list(weights.values())) + tensor_bytes(out)
    macs = count_macs(module, x)
    return Side(
        label=label,
        params=sum(p.numel() for p in module.parameters()),
        macs=macs,
        bytes=moved,
        median_ms=timing.median_ms,
        iqr_ms=timing.iqr_ms,
        roofline_ms=peaks.roofline_ms(2 * macs, moved, x.dtype),
    )


def run_case(case: Case, *, repeats: int, warmup: int, peaks: MachinePeaks, seed: int = 0) -> CaseResult:
    """Build, check, count and time one case (in the current thread setting)."""
    torch.manual_seed(seed)
    module_a, module_b, x = case.build()
    with eval_no_grad(module_a), eval_no_grad(module_b):
        out_a, out_b = module_a(x), module_b(x)
        if case.same_output and not torch.allclose(out_a, out_b, rtol=1e-4, atol=1e-4):
            error = (out_a - out_b).abs().max().item()
            raise AssertionError(f"{case.name}: {case.a} and {case.b} should agree but differ by up to {error:.3g}")
        del out_a, out_b
        timing_a, timing_b = interleaved([lambda: module_a(x), lambda: module_b(x)], repeats=repeats, warmup=warmup)
        side_a = _side(case.a, module_a, x, timing_a, peaks)
        side_b = _side(case.b, module_b, x, timing_b, peaks)
    return CaseResult(case.name, tuple(x.shape), side_a, side_b)


def _kept(suite: str, cases: list, only: str | None) -> list:
    """The cases whose name contains ``only`` (all of them for ``None``); ``ValueError`` naming them if none does."""
    if only is None:
        return cases
    kept = [case for case in cases if only in case.name]
    if not kept:
        names = ", ".join(dict.fromkeys(case.name for case in cases))
        raise ValueError(f"bench {suite}: no case name contains {only!r} (cases: {names})")
    return kept


def _plan(name: str, quick: bool, batch: int | None) -> list[Case] | TablePlan:
    from convzoo.registry import SUITES

    return SUITES.get(name).obj(quick=quick, batch=batch)


def suite_case_names(name: str, *, quick: bool = False, batch: int | None = None) -> list[str]:
    """The names of suite ``name``'s cases (a table suite's rows), built without measuring anything."""
    plan = _plan(name, quick, batch)
    return [case.name for case in (plan.rows if isinstance(plan, TablePlan) else plan)]


def suite_threads(name: str) -> int | None:
    """The thread count suite ``name`` is defined at (a table suite may fix one), ``None`` when it leaves it open."""
    plan = _plan(name, True, None)
    return plan.threads if isinstance(plan, TablePlan) else None


def select_suites(suite: str, *, only: str | None = None, quick: bool = False, batch: int | None = None) -> list[str]:
    """The registered suites ``suite`` names (a suite, or ``"all"``) that have a case whose name contains ``only``,
    found before anything is measured; ``ValueError`` if none has (naming the cases of a single suite).
    """
    from convzoo.registry import SUITES

    names = SUITES.names() if suite == "all" else [SUITES.get(suite).name]
    if only is None:
        return names
    if suite != "all":
        plan = _plan(names[0], quick, batch)
        _kept(names[0], plan.rows if isinstance(plan, TablePlan) else plan, only)
        return names
    kept = [name for name in names if any(only in case for case in suite_case_names(name, quick=quick, batch=batch))]
    if not kept:
        raise ValueError(f"bench: no case of any suite has a name containing {only!r}")
    return kept


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def run_suite(
    name: str,
    *,
    quick: bool = False,
    threads: int | None = None,
    threads_reason: str | None = None,
    repeats: int = 25,
    warmup: int = 5,
    batch: int | None = None,
    peaks: MachinePeaks | None = None,
    progress: Callable[[str], None] | None = None,
    only: str | None = None,
) -> SuiteResult | TableResult:
    """Run the registered suite ``name``; ``quick`` runs its tiny sizes, ``batch`` overrides its batch size,
    ``only`` keeps the cases whose name contains that text (a text no case name contains raises ``ValueError``).

    ``threads`` defaults to :func:`~convzoo.profile.timing.choose_threads` (no more than the idle cores, and the
    suite's own count where it fixes one); ``threads_reason`` says why a given count was chosen. ``progress`` is
    called with each case's name before it runs. Peaks default to this machine's cached ones at that thread count
    (quick peaks with ``quick``). A pair suite gives a :class:`SuiteResult`, a table suite a :class:`TableResult`.
    """
    from convzoo.registry import SUITES

    suite = SUITES.get(name)
    if not is_int(repeats) or repeats < MIN_REPEATS:
        raise ValueError(f"bench: repeats must be an int ≥ {MIN_REPEATS} (medians of fewer mislead), got {repeats!r}")
    check_int(warmup, "warmup", "bench", low=0)
    if batch is not None:
        check_int(batch, "batch", "bench")
    plan = suite.obj(quick=quick, batch=batch)
    table = isinstance(plan, TablePlan)
    cases = _kept(suite.name, plan.rows if table else plan, only)
    if threads is None:
        threads, threads_reason = choose_threads(None, plan.threads if table else None)
    results, skipped = [], []
    with use_threads(threads) as used, LoadWatch() as watch:
        peaks = peaks if peaks is not None else machine_peaks(used, quick=quick)
        for case in cases:
            if progress is not None:
                progress(case.name)
            try:
                if table:
                    results.append({"name": case.name, **case.measure(repeats=repeats, warmup=warmup, peaks=peaks)})
                else:
                    results.append(run_case(case, repeats=repeats, warmup=warmup, peaks=peaks))
            except (ValueError, TypeError, NotImplementedError, RuntimeError) as error:
                skipped.append((case.name if table else f"{case.name}: {case.a} vs {case.b}", _first_line(error)))
    conditions = RunConditions(fingerprint(used), threads_reason or "asked for", watch.load)
    if table:
        notes = tuple(plan.notes(results)) if plan.notes is not None else ()
        return TableResult(
            name, quick, used, repeats, warmup, peaks, plan.columns, tuple(results), notes, tuple(skipped), conditions
        )
    return SuiteResult(name, quick, used, repeats, warmup, peaks, tuple(results), tuple(skipped), conditions)
