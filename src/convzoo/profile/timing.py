"""Timing, the one implementation every convzoo measurement uses: warm-up, repeats, median and IQR, threads stated.

Comparisons run their candidates interleaved in one process (A B A B ...), so a change of machine load or clock
during the run touches every candidate alike; only ratios measured that way are compared. The garbage collector
is paused while timing (as ``timeit`` does), and the intra-op thread count is set for the measurement and then
restored.

On a shared machine a measurement is only as good as the cores it had: :func:`choose_threads` picks no more
threads than there are idle cores, and :class:`LoadWatch` records the load average before and after a run and the
CPU time the rest of the machine used during it (from ``/proc/stat``, less this process's own), so a report can say
when other processes shared the cores (times then quantise to scheduler ticks and can be off by several times).
"""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from convzoo.core.validate import check_int, is_int

__all__ = [
    "SHARED_CORES",
    "Load",
    "LoadWatch",
    "Timing",
    "choose_threads",
    "interleaved",
    "load_average",
    "measure",
    "summarize",
    "use_threads",
]

# Other processes keeping this many cores busy on average during a run (a tenth of a core) make it "shared":
# an idle machine's own housekeeping stays well below, one busy neighbour is near 1.
SHARED_CORES = 0.1


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


def choose_threads(requested: int | None = None, preferred: int | None = None) -> tuple[int, str]:
    """The intra-op threads to measure with, and why: ``requested`` when given, else the fewest of ``preferred``
    (a suite defined at a thread count), torch's default and the idle cores, ``os.cpu_count()`` less the
    rounded-up 1-minute load average (at least 1): more threads than idle cores share a core with another process.
    """
    if requested is not None:
        return requested, "asked for"
    cpus = os.cpu_count() or 1
    load = load_average()
    limits = [(torch.get_num_threads(), "torch's {}")]
    if load is None:
        limits.append((cpus, "{} cpus (load average unknown)"))
    else:
        busy = math.ceil(load)
        limits.append((max(1, cpus - busy), f"{{}} idle (of {cpus} cpus, {busy} busy: 1-minute load {load:.2f})"))
    if preferred is not None:
        limits.append((preferred, "the suite's {}"))
    threads = min(count for count, _ in limits)
    return threads, "default: the fewest of " + ", ".join(what.format(count) for count, what in limits)


def _busy_cpu_seconds() -> float | None:
    """CPU seconds every process of the machine has used since boot (``/proc/stat``: user, nice, system, irq,
    softirq and steal, the time a hypervisor gave this machine's cores to another), ``None`` where it is absent."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    """CPU seconds this process has used, all its threads, and its waited-for children (``os.times``: portable)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass(frozen=True)
class Load:
    """The machine around one run: load averages before and after, the run's wall time, the CPU time this process
    used and the CPU time the rest of the machine used during it (``None`` without ``/proc/stat``)."""

    load_before: float | None
    load_after: float | None
    wall_s: float
    own_cpu_s: float
    others_cpu_s: float | None
    cpus: int

    @property
    def others_cores(self) -> float | None:
        """How many cores other processes kept busy on average during the run."""
        if self.others_cpu_s is None or self.wall_s <= 0:
            return None
        return self.others_cpu_s / self.wall_s

    def shared(self, threads: int) -> bool:
        """Whether other processes used the cores during the run: busy for at least :data:`SHARED_CORES` cores on
        average, or (without ``/proc/stat``) a load average before the run above the cores left to it."""
        if self.others_cores is not None:
            return self.others_cores >= SHARED_CORES
        return self.load_before is not None and self.load_before > self.cpus - threads

    def warning(self, threads: int) -> str | None:
        """One line saying the run shared its cores and what that does to the figures, ``None`` when it did not."""
        if not self.shared(threads):
            return None
        if self.others_cores is not None:
            used = f"other processes kept {self.others_cores:.2f} of {self.cpus} cores busy during the run"
        else:
            used = f"the load average was {self.load_before:.2f} on {self.cpus} cores before the run"
        return (
            f"warning: {used} ({threads} threads measured); times may be inflated and quantised to scheduler ticks, "
            f"so compare only ratios measured side by side, or rerun when `uptime` shows the machine quiet"
        )

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "load_before": self.load_before,
            "load_after": self.load_after,
            "wall_s": self.wall_s,
            "own_cpu_s": self.own_cpu_s,
            "others_cpu_s": self.others_cpu_s,
            "others_cores": self.others_cores,
            "cpus": self.cpus,
        }


class LoadWatch:
    """``with LoadWatch() as watch: ...`` then ``watch.load``: the :class:`Load` over the block."""

    load: Load | None = None

    def __enter__(self) -> LoadWatch:
        self._before = load_average()
        self._busy = _busy_cpu_seconds()
        self._own = _own_cpu_seconds()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._start
        own = _own_cpu_seconds() - self._own
        busy = _busy_cpu_seconds()
        others = None if busy is None or self._busy is None else max(0.0, busy - self._busy - own)
        self.load = Load(self._before, load_average(), wall, own, others, os.cpu_count() or 1)


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
