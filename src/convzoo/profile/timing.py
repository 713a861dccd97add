"""Timing, the one implementation every convzoo measurement uses: warm-up, repeats, median and IQR, threads stated.

Comparisons run their candidates interleaved in one process (A B A B ...), so a change of machine load or clock
during the run touches every candidate alike; only ratios measured that way are compared. The garbage collector
is paused while timing (as ``timeit`` does), and the intra-op thread count is set for the measurement and then
restored.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from convzoo.core.validate import check_int, is_int

__all__ = ["Timing", "interleaved", "load_average", "measure", "summarize", "use_threads"]


@dataclass(frozen=True)
class Timing:
    """Median, quartiles and fastest of ``repeats`` samples, in milliseconds, taken with ``threads`` threads."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    min_ms: float
    repeats: int
    threads: int

    @property
    def iqr_ms(self) -> float:
        """Interquartile range: the spread of the middle half of the samples."""
        return self.q3_ms - self.q1_ms


def summarize(samples_ms: Sequence[float], threads: int | None = None) -> Timing:
    """The :class:`Timing` of ``samples_ms`` (at least one sample); ``threads`` defaults to the current count."""
    if not samples_ms:
        raise ValueError("timing: no samples to summarize")
    median = statistics.median(samples_ms)
    q1, _, q3 = statistics.quantiles(samples_ms, n=4, method="inclusive") if len(samples_ms) > 1 else [median] * 3
    threads = torch.get_num_threads() if threads is None else threads
    return Timing(median, q1, q3, min(samples_ms), len(samples_ms), threads)


def load_average() -> float | None:
    """The 1-minute load average (runnable processes) where the OS reports one: a reading above the idle cores
    means the measurement shared the CPU, and a multi-threaded one may be off by a large factor."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@contextmanager
def use_threads(threads: int | None) -> Iterator[int]:
    """Run the block with ``threads`` intra-op threads (``None``: leave as is); yields the count in force."""
    if threads is not None and (not is_int(threads) or threads < 1):
        raise ValueError(f"timing: threads must be a positive int or None, got {threads!r}")
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _check(repeats: int, warmup: int) -> None:
    if not is_int(repeats) or repeats < 1:
        raise ValueError(f"timing: repeats must be an int ≥ 1, got {repeats!r}")
    check_int(warmup, "warmup", "timing", low=0)


def interleaved(fns: Sequence[Callable[[], object]], *, repeats: int = 30, warmup: int = 5) -> list[Timing]:
    """Time each callable ``repeats`` times after ``warmup`` untimed rounds, in turn: A B C A B C ...

    Returns one :class:`Timing` per callable, in order.
    """
    _check(repeats, warmup)
    if not fns:
        raise ValueError("timing: nothing to time (no callables given)")
    samples: list[list[float]] = [[] for _ in fns]
    with _gc_paused():
        for round_ in range(warmup + repeats):
            for fn, record in zip(fns, samples, strict=True):
                start = time.perf_counter()
                fn()
                elapsed_ms = (time.perf_counter() - start) * 1e3
                if round_ >= warmup:
                    record.append(elapsed_ms)
    return [summarize(s) for s in samples]


def measure(fn: Callable[[], object], *, repeats: int = 30, warmup: int = 5) -> Timing:
    """Time one callable: ``warmup`` untimed calls, then the median of ``repeats`` timed ones."""
    return interleaved([fn], repeats=repeats, warmup=warmup)[0]
