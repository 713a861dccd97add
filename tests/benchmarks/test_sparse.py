"""Suites sparse1x1 and sparse3d: the cases the goals name are registered, the MobileNet-v1 they build has the
published parameter count, and each pair computes the same function (tests/commands/test_bench.py runs both
quickly from the command line)."""

from __future__ import annotations

import torch

from convzoo.benchmarks.sparse import _pointwise, _sparse3d, mobilenet_v1
from convzoo.registry import SUITES


def test_mobilenet_v1_has_the_published_count():
    # 4,231,976 trainable parameters: Keras' MobileNet(alpha=1.0) (the paper's Table 8 rounds it to 4.2M)
    assert sum(p.numel() for p in mobilenet_v1().parameters()) == 4_231_976


def test_cases_named_by_the_goals():
    names = [c.name for c in SUITES.get("sparse1x1").obj(quick=False)]
    assert "1x512x14x14→512" in names and "1x1024x7x7→1024" in names and len(names) == 10
    names = [c.name for c in SUITES.get("sparse3d").obj(quick=False)]
    assert "64³ random 5% dense" in names and "64³ random 5% spconv" in names


def test_pairs_compute_the_same_function():
    sparse, dense, x = _pointwise(16, 32, 5, 1)
    with torch.no_grad():
        torch.testing.assert_close(sparse(x), dense(x), rtol=1e-5, atol=1e-5)
    ours, conv3d, grid = _sparse3d("shell", 0.05, 12, 4, "dense")
    with torch.no_grad():
        expected = conv3d(grid).permute(0, 2, 3, 4, 1)[tuple(ours.coords.unbind(1))]
        torch.testing.assert_close(ours(grid), expected, rtol=1e-4, atol=1e-4)
