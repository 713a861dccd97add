"""compare_ops: counts from the flop counter match the convolution formula; ratios are relative to the first op."""

from __future__ import annotations

import pytest

from convzoo.profile.compare import compare_ops


def test_compare_counts_and_ratio():
    costs = compare_ops(["conv", "dwsep"], channels=8, size=6, repeats=3, warmup=1)
    conv, dwsep = costs
    assert conv.macs == 8 * 8 * 9 * 36 and conv.params == 8 * 8 * 9 + 8
    assert dwsep.macs == 8 * 9 * 36 + 8 * 8 * 36
    assert conv.ratio == 1.0 and dwsep.ratio > 0


def test_compare_rejects_bad_repeats():
    with pytest.raises(ValueError, match=r"compare: repeats must be ≥ 1"):
        compare_ops(["conv"], repeats=0)
