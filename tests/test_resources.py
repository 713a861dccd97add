"""Resource bounds: repeated forward passes of every registered op keep the process's memory flat.

A cache keyed by shapes or a tensor kept alive per call would grow without bound over a long run. Each op runs
200 passes (after a warm-up that lets allocators and lazily built state settle), in training mode with a
backward (which keeps autograd graphs alive if something holds them) and in eval mode; the resident memory may
not grow by more than ``BOUND`` over them. Linux only (it reads ``/proc/self/statm``).
"""

from __future__ import annotations

import gc
import os
import sys

import pytest
import torch

from convzoo import OPS
from convzoo.testing import make_contract_op

BOUND = 4 * 2**20  # bytes of resident growth allowed over 200 passes (allocator noise stays well under this)
PASSES = 200

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _growth(step) -> int:
    for _ in range(20):
        step()
    gc.collect()
    before = _resident_bytes()
    for _ in range(PASSES):
        step()
    gc.collect()
    return _resident_bytes() - before


@pytest.mark.parametrize("name", [e.name for e in OPS.entries() if e.kind in ("grid", "attention", "sequence")])
def test_two_hundred_passes_keep_memory_flat(name):
    entry = OPS.get(name)
    dim = 2 if 2 in entry.dims else entry.dims[0]
    op = make_contract_op(name, dim=dim)
    size = 32 if entry.kind == "sequence" else 8
    x = torch.randn(2, op.in_channels, *([size] * dim))

    def train_step():
        op.train()
        op(x).square().mean().backward()
        op.zero_grad(set_to_none=True)

    def eval_step():
        op.eval()
        with torch.no_grad():
            op(x)

    for step in (train_step, eval_step):
        growth = _growth(step)
        assert growth <= BOUND, f"{name}: resident memory grew by {growth / 2**20:.1f} MiB over {PASSES} passes"
