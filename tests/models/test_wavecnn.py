"""The wave-study CNN (S13): its CP-compressed form has the CP op's parameter count; the field task scores it."""

from __future__ import annotations

import pytest
import torch

from convzoo.data.base import load_dataset
from convzoo.models._dense import create_dense
from convzoo.train.tasks.field import score_field


def test_plain_and_cp_forms_and_their_parameter_counts():
    plain = create_dense("wavecnn", channels=8, depth=3, kernel_size=5)
    assert (
        sum(p.numel() for p in plain.parameters()) == (2 * 8 * 25 + 8) + (8 * 8 * 25 + 8) + (8 * 25 + 1) + 1
    )  # + gain
    cp = create_dense("wavecnn", channels=8, depth=3, kernel_size=5, op="cp", rank=4)
    # each CP conv: R·(C_in + C_out + k + k) + C_out bias, with R = min(rank, C_in, C_out)
    expected = 2 * (2 + 8 + 10) + 8 + 4 * (8 + 8 + 10) + 8 + 1 * (8 + 1 + 10) + 1 + 1
    assert sum(p.numel() for p in cp.parameters()) == expected
    x = torch.randn(2, 2, 11, 13)
    assert plain(x).shape == cp(x).shape == (2, 1, 11, 13)
    assert torch.equal(cp(x), x[:, 1:])  # starts as persistence
    with pytest.raises(ValueError, match="rank=4 is the rank of op='cp'"):
        create_dense("wavecnn", rank=4)


def test_relative_error_of_persistence_equals_a_direct_computation():
    data = load_dataset("wave", "test", size=12, steps=12)

    class Persistence(torch.nn.Module):
        def forward(self, x):
            return x[:, -1:]

    scores = score_field(Persistence(), data)
    diff = data.inputs[:, 1:] - data.targets
    assert scores["rel_l2"] == pytest.approx(float(diff.norm() / data.targets.norm()), rel=1e-4)
    assert scores["mse"] == pytest.approx(float((diff**2).mean()), rel=1e-4)
