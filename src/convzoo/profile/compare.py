"""Side-by-side comparison of operators at one shape: parameters, MACs and latency measured interleaved.

Latency follows the measurement conventions of convzoo (:mod:`convzoo.profile.timing`): warm-up, then the
candidates run in turn (A B C A B C ...) in one process, ``repeats`` times; the median is reported with the
thread count, and each op's ratio to the first one. MACs come from :mod:`convzoo.profile.counting`
(``torch.utils.flop_counter`` with the per-op formulas).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from convzoo.ops.base import create_op, kernel_for
from convzoo.profile.counting import count_macs
from convzoo.profile.timing import interleaved

__all__ = ["OpCost", "count_macs", "compare_ops"]


@dataclass(frozen=True)
class OpCost:
    name: str
    params: int
    macs: int
    median_ms: float
    spread_ms: float
    ratio: float
    threads: int
    kernel_size: int


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
    """Build each op at ``channels → channels`` and measure it on a ``(batch, channels, size^dim)`` input.

    ``threads`` sets torch's intra-op thread count (and leaves it set, so a caller can state it after);
    ``spread_ms`` is the IQR.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"compare: repeats must be ≥ 1 and warmup ≥ 0, got repeats={repeats}, warmup={warmup}")
    torch.manual_seed(seed)
    kernels = [kernel_for(n, kernel_size) for n in names]  # an op that needs a larger kernel gets its smallest
    ops = [create_op(n, channels, channels, k, stride, dim=dim) for n, k in zip(names, kernels, strict=True)]
    x = torch.randn(batch, channels, *([size] * dim))
    if threads is not None:
        torch.set_num_threads(threads)
    for op in ops:
        op.eval()
    with torch.no_grad():
        timings = interleaved([lambda op=op: op(x) for op in ops], repeats=repeats, warmup=warmup)
    costs = []
    for name, op, timing, k in zip(names, ops, timings, kernels, strict=True):
        params = sum(p.numel() for p in op.parameters())
        ratio = timing.median_ms / timings[0].median_ms
        macs = count_macs(op, x)
        costs.append(OpCost(name, params, macs, timing.median_ms, timing.iqr_ms, ratio, timing.threads, k))
    return costs
