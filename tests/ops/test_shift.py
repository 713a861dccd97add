"""shift: moves exactly the expected pixels, costs zero MACs, and its dense kernel is one-hot per channel."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from convzoo import create_op
from convzoo.ops.shift import shift_offsets, spatial_shift


def test_axial_shift_moves_the_expected_pixels():
    # 5 channels in 2-d: groups of 1 channel for (+1,0), (-1,0), (0,+1), (0,-1); channel 4 stays
    x = torch.arange(5 * 3 * 3, dtype=torch.float32).view(1, 5, 3, 3)
    y = spatial_shift(x, shift_offsets(2), (1, 1), (1, 1))
    c0, c1, c2, c3, c4 = (x[0, c] for c in range(5))
    zero_row, zero_col = torch.zeros(1, 3), torch.zeros(3, 1)
    torch.testing.assert_close(y[0, 0], torch.cat([zero_row, c0[:2]], 0))  # moved down by one row
    torch.testing.assert_close(y[0, 1], torch.cat([c1[1:], zero_row], 0))  # moved up
    torch.testing.assert_close(y[0, 2], torch.cat([zero_col, c2[:, :2]], 1))  # moved right
    torch.testing.assert_close(y[0, 3], torch.cat([c3[:, 1:], zero_col], 1))  # moved left
    torch.testing.assert_close(y[0, 4], c4)


def test_shift_with_stride_samples_the_shifted_grid():
    x = torch.randn(1, 4, 7, 7)
    full = spatial_shift(x, shift_offsets(2), (1, 1), (1, 1))
    strided = spatial_shift(x, shift_offsets(2), (1, 1), (2, 2))
    torch.testing.assert_close(strided, full[:, :, ::2, ::2])


def test_all_directions_include_diagonals():
    assert len(shift_offsets(2, "all")) == 8 and (1, 1) in shift_offsets(2, "all")
    assert len(shift_offsets(3, "axial")) == 6 and len(shift_offsets(3, "all")) == 26


def test_shift_has_zero_macs_and_op_costs_only_its_pointwise_conv():
    x = torch.randn(1, 16, 10, 10)
    counter = FlopCounterMode(display=False)
    with counter:
        spatial_shift(x, shift_offsets(2), (1, 1), (1, 1))
    assert counter.get_total_flops() == 0
    op = create_op("shift", 16, 32, bias=False)
    with counter:
        op(x)
    assert counter.get_total_flops() == 2 * 16 * 32 * 10 * 10
    assert sum(p.numel() for p in op.parameters()) == 16 * 32


def test_dense_kernel_is_one_hot_per_input_channel():
    op = create_op("shift", 8, 3, 5)
    w = op.dense_kernel().weight  # (3, 8, 5, 5)
    nonzero_taps = (w != 0).any(dim=0).flatten(1).sum(dim=1)
    assert nonzero_taps.tolist() == [1] * 8
    # group 0 moves content down by 2 rows: y[t] = x[t − 2] is the tap two rows above the centre
    assert (w[:, 0, 0, 2] != 0).all()


def test_shift_needs_a_channel_per_direction_and_a_reach():
    with pytest.raises(ValueError, match=r"shift: needs at least one input channel per direction \(4 axial"):
        create_op("shift", 3, 8)
    with pytest.raises(ValueError, match=r"shift: kernel_size must be at least 3 to shift anything, got 1"):
        create_op("shift", 8, 8, 1)
    with pytest.raises(ValueError, match=r"shift: directions must be 'axial' or 'all', got 'diagonal'"):
        create_op("shift", 8, 8, directions="diagonal")


def _shift_by_loops(x, offsets, distance):
    """``out[:, c, t] = x[:, c, t − o·distance]`` element by element (zero outside), the remainder unshifted."""
    out, group = torch.zeros_like(x), x.shape[1] // len(offsets)
    size = x.shape[2:]
    for channel in range(x.shape[1]):
        g = channel // group
        for t in itertools.product(*(range(s) for s in size)):
            moved = g < len(offsets)
            source = tuple(i - o * d for i, o, d in zip(t, offsets[g], distance, strict=True)) if moved else t
            if all(0 <= i < s for i, s in zip(source, size, strict=True)):
                out[(slice(None), channel, *t)] = x[(slice(None), channel, *source)]
    return out


@pytest.mark.parametrize(
    ("dim", "size", "distance"),
    [(2, (5, 4), (1, 1)), (2, (3, 3), (2, 4)), (2, (2, 2), (5, 5)), (1, (6,), (3,)), (3, (3, 2, 4), (1, 2, 1))],
)
def test_unstrided_shift_equals_moving_each_element_by_hand_in_both_layouts(dim, size, distance):
    offsets = shift_offsets(dim, "all")
    x = torch.randn(2, 2 * len(offsets) + 3, *size, dtype=torch.float64)
    expected = _shift_by_loops(x, offsets, distance)
    assert torch.equal(spatial_shift(x, offsets, distance, (1,) * dim), expected)
    if dim == 2:
        shifted = spatial_shift(x.contiguous(memory_format=torch.channels_last), offsets, distance, (1, 1))
        assert torch.equal(shifted, expected) and shifted.is_contiguous(memory_format=torch.channels_last)
