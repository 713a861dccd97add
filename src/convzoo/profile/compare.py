"""Side-by-side comparison of operators at one shape: parameters, MACs and latency measured interleaved.

Latency follows the measurement conventions of convzoo: warm-up, then the candidates run in
turn (A B C A B C ...) in one process, ``repeats`` times; the median is reported with the
thread count, and each op's ratio to the first one. MACs come from ``torch.utils.flop_counter``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from convzoo.ops.base import create_op

__all__ = ["OpCost", "count_macs", "compare_ops"]


@dataclass(frozen=True)
class OpCost:
    name: str
    params: int
    macs: int
    median_ms: float
    spread_ms: float
    ratio: float


def count_macs(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass, as ``torch.utils.flop_counter`` counts them (flops / 2)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        module(x)
    return counter.get_total_flops() // 2


def compare_ops(
    names: Sequence[str],
    channels: int = 64,
    size: int = 56,
    *,
    kernel_size: int = 3,
    stride: int = 1,
    dim: int = 2,
    batch: int = 1,
    repeats: int = 30,
    warmup: int = 5,
    threads: int | None = None,
    seed: int = 0,
) -> list[OpCost]:
    """Build each op at ``channels → channels`` and measure it on a ``(batch, channels, size^dim)`` input."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"compare: repeats must be ≥ 1 and warmup ≥ 0, got repeats={repeats}, warmup={warmup}")
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    ops = [create_op(n, channels, channels, kernel_size, stride, dim=dim).eval() for n in names]
    x = torch.randn(batch, channels, *([size] * dim))
    times: list[list[float]] = [[] for _ in ops]
    with torch.no_grad():
        for round_ in range(warmup + repeats):
            for op, record in zip(ops, times, strict=True):
                start = time.perf_counter()
                op(x)
                elapsed = time.perf_counter() - start
                if round_ >= warmup:
                    record.append(elapsed * 1e3)
    medians = [statistics.median(t) for t in times]
    costs = []
    for name, op, record, median in zip(names, ops, times, medians, strict=True):
        q = statistics.quantiles(record, n=4) if len(record) > 1 else [median, median, median]
        params = sum(p.numel() for p in op.parameters())
        costs.append(OpCost(name, params, count_macs(op, x), median, q[2] - q[0], median / medians[0]))
    return costs
