"""The pair harness behind ``convzoo bench``: each case is a pair (A, B) timed interleaved, A B A B ..., in one run.

A suite is a function ``cases(quick=False, batch=None) -> list[Case]`` registered in
``convzoo.registry.SUITES`` (the suites live in :mod:`convzoo.benchmarks`, one module each). For every case the
harness builds both modules (seeded, eval mode, ``no_grad``), checks they run on the input (and agree where the
case says they compute the same function), counts params, MACs and bytes (inputs + weights + outputs once), then
times them interleaved: ``warmup`` untimed rounds, then the median of ``repeats`` ≥ 20 rounds. The ratio
``time A / time B`` of the medians is what a suite reports; absolute times are for reading, not for comparing
across runs. Efficiency is roofline time / measured time under this machine's peaks
(:mod:`convzoo.profile.machine`). A case whose modules cannot be built at its shape is skipped with the reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from convzoo.core.files import atomic_write_text
from convzoo.core.validate import check_int, is_int
from convzoo.profile.counting import count_macs, eval_no_grad, tensor_bytes
from convzoo.profile.machine import MachinePeaks, machine_peaks
from convzoo.profile.timing import interleaved, load_average, use_threads

__all__ = ["MIN_REPEATS", "Case", "CaseResult", "Side", "SuiteResult", "run_case", "run_suite", "select_suites"]

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
class SuiteResult:
    suite: str
    quick: bool
    threads: int
    repeats: int
    warmup: int
    peaks: MachinePeaks
    results: tuple[CaseResult, ...]
    skipped: tuple[tuple[str, str], ...] = field(default=())
    load_average: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "quick": self.quick,
            "threads": self.threads,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "torch": torch.__version__,
            "load_average": self.load_average,
            "machine": self.peaks.to_dict(),
            "cases": [r.to_dict() for r in self.results],
            "skipped": [{"name": n, "reason": why} for n, why in self.skipped],
        }

    def markdown(self) -> str:
        """The ratio table, one line per case, with the run's conditions above it."""
        load = f"; load average {self.load_average:.2f} at start" if self.load_average is not None else ""
        lines = [
            f"### convzoo bench {self.suite}{' --quick' if self.quick else ''}",
            "",
            f"{self.threads} threads, median of {self.repeats} interleaved repeats (A B A B ...) after {self.warmup} "
            f"warm-up; machine {self.peaks.cpu}: fp32 {self.peaks.fp32_gflops:.1f} GFLOP/s, copy "
            f"{self.peaks.copy_gbps:.1f} GB/s; torch {torch.__version__}{load}",
            "",
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


def _kept(suite: str, cases: list[Case], only: str | None) -> list[Case]:
    """The cases whose name contains ``only`` (all of them for ``None``); ``ValueError`` naming them if none does."""
    if only is None:
        return cases
    kept = [case for case in cases if only in case.name]
    if not kept:
        names = ", ".join(dict.fromkeys(case.name for case in cases))
        raise ValueError(f"bench {suite}: no case name contains {only!r} (cases: {names})")
    return kept


def select_suites(suite: str, *, only: str | None = None, quick: bool = False, batch: int | None = None) -> list[str]:
    """The registered suites ``suite`` names (a suite, or ``"all"``) that have a case whose name contains ``only``,
    found before anything is measured; ``ValueError`` if none has (naming the cases of a single suite).
    """
    from convzoo.registry import SUITES

    names = SUITES.names() if suite == "all" else [SUITES.get(suite).name]
    if only is None:
        return names
    if suite != "all":
        _kept(names[0], SUITES.get(names[0]).obj(quick=quick, batch=batch), only)
        return names
    kept = [name for name in names if any(only in case.name for case in SUITES.get(name).obj(quick=quick, batch=batch))]
    if not kept:
        raise ValueError(f"bench: no case of any suite has a name containing {only!r}")
    return kept


def run_suite(
    name: str,
    *,
    quick: bool = False,
    threads: int | None = None,
    repeats: int = 25,
    warmup: int = 5,
    batch: int | None = None,
    peaks: MachinePeaks | None = None,
    progress: Callable[[str], None] | None = None,
    only: str | None = None,
) -> SuiteResult:
    """Run the registered suite ``name``; ``quick`` runs its tiny sizes, ``batch`` overrides its batch size,
    ``only`` keeps the cases whose name contains that text (a text no case name contains raises ``ValueError``).

    ``progress`` is called with each case's name before it runs. Peaks default to this machine's cached ones at
    the thread count in force (quick peaks with ``quick``).
    """
    from convzoo.registry import SUITES

    suite = SUITES.get(name)
    if not is_int(repeats) or repeats < MIN_REPEATS:
        raise ValueError(f"bench: repeats must be an int ≥ {MIN_REPEATS} (medians of fewer mislead), got {repeats!r}")
    check_int(warmup, "warmup", "bench", low=0)
    if batch is not None:
        check_int(batch, "batch", "bench")
    cases = _kept(suite.name, suite.obj(quick=quick, batch=batch), only)
    results, skipped = [], []
    load = load_average()
    with use_threads(threads) as used:
        peaks = peaks if peaks is not None else machine_peaks(used, quick=quick)
        for case in cases:
            if progress is not None:
                progress(case.name)
            try:
                results.append(run_case(case, repeats=repeats, warmup=warmup, peaks=peaks))
            except (ValueError, TypeError, NotImplementedError, RuntimeError) as error:
                skipped.append((f"{case.name}: {case.a} vs {case.b}", str(error).splitlines()[0]))
    return SuiteResult(name, quick, used, repeats, warmup, peaks, tuple(results), tuple(skipped), load)
