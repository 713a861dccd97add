"""S87 filter distribution statistics: a per-layer table, variance entropy's extremes, comparing two checkpoints."""

from __future__ import annotations

import pytest
import torch

from convzoo import create_model
from convzoo.interpret.filter_stats import compare_filters, filter_statistics, variance_entropy


def test_table_covers_every_3x3_layer():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, layers=(1, 1, 1))
    stats = filter_statistics(model)
    assert [s.layer for s in stats][0] == "stem.0" and len(stats) == 7
    assert stats[0].filters == 16 * 3 and stats[0].shape == (16, 3, 3, 3)
    assert all(0.9 < s.variance_entropy <= 1.0 and s.sparsity == 0.0 for s in stats)  # random init: white
    assert len(stats[0].row()) == 7


def test_variance_entropy_extremes():
    generator = torch.Generator().manual_seed(0)
    white = torch.randn(5000, 9, generator=generator, dtype=torch.float64)
    one_pattern = torch.randn(500, 1, generator=generator, dtype=torch.float64) * torch.arange(9.0, dtype=torch.float64)
    assert variance_entropy(white) == pytest.approx(1.0, abs=0.01)
    assert variance_entropy(one_pattern) < 1e-6


def test_two_checkpoints_compare():
    torch.manual_seed(0)
    a = create_model("resnet20", num_classes=10, layers=(1, 1, 1))
    b = create_model("resnet20", num_classes=10, layers=(1, 1, 1))
    same = compare_filters(a, a)
    assert [d for _, d in same] == [0.0] * 7
    with torch.no_grad():
        b.stem[0].weight.mul_(0.0).add_(torch.randn(16, 3, 1, 1))  # constant filters: a spiky distribution
    assert dict(compare_filters(a, b))["stem.0"] > 1.0
