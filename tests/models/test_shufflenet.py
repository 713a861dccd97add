"""ShuffleNet v1 (S46): channel shuffle is the permutation of the paper's Figure 1, and the units follow Fig. 2."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.layers.shuffle import channel_shuffle
from convzoo.models import create_model


def _source_channels(channels: int, groups: int) -> list[int]:
    """Which input channel lands at each output position (input channel c carries the value c)."""
    x = torch.arange(channels, dtype=torch.float64).view(1, channels, 1, 1)
    return channel_shuffle(x, groups).flatten().long().tolist()


def test_channel_shuffle_is_a_permutation():
    for channels, groups in ((12, 3), (24, 8), (6, 1), (10, 2), (16, 4)):
        assert sorted(_source_channels(channels, groups)) == list(range(channels))


def test_channel_shuffle_interleaves_groups_as_figure_1():
    # groups of n channels: (a0 a1 a2 a3 | b0 b1 b2 b3 | c0 c1 c2 c3) -> a0 b0 c0 a1 b1 c1 a2 b2 c2 a3 b3 c3
    assert _source_channels(12, 3) == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    # (a0 a1 a2 | b0 b1 b2) -> a0 b0 a1 b1 a2 b2
    assert _source_channels(6, 2) == [0, 3, 1, 4, 2, 5]


@pytest.mark.parametrize("groups", [2, 3, 4, 8])
def test_every_next_group_sees_every_previous_group(groups):
    # Fig. 1(c): after the shuffle, each group of the next group conv takes input from all groups
    n = 2 * groups
    sources = _source_channels(groups * n, groups)
    for k in range(groups):
        received = sources[k * n : (k + 1) * n]
        assert {c // n for c in received} == set(range(groups))


@pytest.mark.parametrize(
    ("groups", "widths"),
    # the paper's Table 1, complexity 1×
    [(1, (144, 288, 576)), (2, (200, 400, 800)), (3, (240, 480, 960)), (4, (272, 544, 1088)), (8, (384, 768, 1536))],
)
def test_stage_widths_and_grouping_follow_table_1(groups, widths):
    with torch.device("meta"):
        model = create_model(f"shufflenet_g{groups}")
    assert [info.channels for info in model.feature_info] == list(widths)
    assert [len(stage) for stage in model.stages] == [4, 8, 4]
    for i, stage in enumerate(model.stages):
        for j, unit in enumerate(stage):
            first, second = unit.compress[0], unit.expand[0]
            # stage 2's first pointwise conv is not grouped: its 24 input channels are too few
            assert first.groups == (1 if (i, j) == (0, 0) else groups)
            assert second.groups == groups
            assert unit.mixer.groups == unit.mixer.in_channels == widths[i] // 4  # depthwise on out / 4 channels


def test_stride_two_unit_concatenates_the_average_pooled_input():
    torch.manual_seed(0)
    model = create_model("shufflenet_g3").eval()
    unit = model.stages[1][0]  # 240 -> 480 channels, stride 2
    x = torch.rand(2, 240, 8, 8)  # non-negative, as after the previous unit's ReLU
    with torch.no_grad():
        out = unit(x)
    assert out.shape == (2, 480, 4, 4)
    torch.testing.assert_close(out[:, :240], F.avg_pool2d(x, 3, 2, 1))


def test_stride_one_unit_shuffles_between_its_pointwise_convs():
    torch.manual_seed(0)
    model = create_model("shufflenet_g3").eval()
    unit = model.stages[0][1]  # 240 -> 240, bottleneck 60 = 3 groups of 20
    x = torch.randn(2, 240, 6, 6)
    # output k takes input (k mod g)·n + k div g: the transpose of the (g, n) channel grid, written out by hand
    order = [(k % 3) * 20 + k // 3 for k in range(60)]
    with torch.no_grad():
        y = unit.compress(x)[:, order]
        expected = F.relu(unit.expand(unit.mixer_norm(unit.mixer(y))) + x)
        torch.testing.assert_close(unit(x), expected)
