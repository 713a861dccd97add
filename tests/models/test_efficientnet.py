"""EfficientNet (S33): compound scaling of B0 reproduces B1–B7, and the MBConv block follows the official code."""

from __future__ import annotations

import pytest
import torch

from convzoo.models import create_model
from convzoo.models.efficientnet import round_filters, round_repeats
from convzoo.registry import MODELS

# Worked by hand from round_filters (nearest multiple of 8, +8 when that loses over 10 %) and
# round_repeats (ceil) applied to B0's Table 1: stem width, the seven stage widths, blocks per stage,
# head width. E.g. B3 stage 2: 16 · 1.2 = 19.2 -> 16, but 16 < 0.9 · 19.2, so 24; B4 stage 7:
# 192 · 1.4 = 268.8 -> 272, 4 · 1.8 = 7.2 -> 8 blocks.
SCALED = {
    "b0": (32, (16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1), 1280),
    "b1": (32, (16, 24, 40, 80, 112, 192, 320), (2, 3, 3, 4, 4, 5, 2), 1280),
    "b2": (32, (16, 24, 48, 88, 120, 208, 352), (2, 3, 3, 4, 4, 5, 2), 1408),
    "b3": (40, (24, 32, 48, 96, 136, 232, 384), (2, 3, 3, 5, 5, 6, 2), 1536),
    "b4": (48, (24, 32, 56, 112, 160, 272, 448), (2, 4, 4, 6, 6, 8, 2), 1792),
    "b5": (48, (24, 40, 64, 128, 176, 304, 512), (3, 5, 5, 7, 7, 9, 3), 2048),
    "b6": (56, (32, 40, 72, 144, 200, 344, 576), (3, 6, 6, 8, 8, 11, 3), 2304),
    "b7": (64, (32, 48, 80, 160, 224, 384, 640), (4, 7, 7, 10, 10, 13, 4), 2560),
}
# the paper's resolutions and the official code's dropout per variant
RESOLUTION = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380, "b5": 456, "b6": 528, "b7": 600}
DROPOUT = {"b0": 0.2, "b1": 0.2, "b2": 0.3, "b3": 0.3, "b4": 0.4, "b5": 0.4, "b6": 0.5, "b7": 0.5}


def test_rounding_rules():
    assert round_filters(32, 1.1) == 32  # 35.2 -> 32, within 10 %
    assert round_filters(16, 1.2) == 24  # 19.2 -> 16 loses > 10 %, so one more step of 8
    assert round_filters(112, 1.2) == 136  # 134.4 -> 136
    assert round_filters(1280, 1.8) == 2304
    assert [round_repeats(r, 3.1) for r in (1, 2, 3, 4)] == [4, 7, 10, 13]
    assert [round_repeats(r, 1.1) for r in (1, 2, 3, 4)] == [2, 3, 4, 5]


@pytest.mark.parametrize("variant", sorted(SCALED))
def test_compound_scaling_reproduces_the_variant(variant):
    stem, widths, depths, head = SCALED[variant]
    with torch.device("meta"):
        model = create_model(f"efficientnet_{variant}")
    assert model.stem[0].out_channels == stem
    assert tuple(info.channels for info in model.feature_info) == widths
    assert tuple(len(stage) for stage in model.stages) == depths
    assert tuple(info.reduction for info in model.feature_info) == (2, 4, 8, 16, 16, 32, 32)
    assert model.head.conv.out_channels == head
    assert model.head.classifier.drop.p == DROPOUT[variant]
    assert MODELS.get(f"efficientnet_{variant}").info.input_size == (3, RESOLUTION[variant], RESOLUTION[variant])


def test_mbconv_se_and_stochastic_depth_follow_the_official_code():
    with torch.device("meta"):
        model = create_model("efficientnet_b0")
    block = model.stages[1][0]  # 16 -> 24, expand 6: depthwise on 96 channels, stride 2
    se = block.body[6]
    assert (se.channels, se.hidden_channels) == (96, 4)  # SE hidden = 0.25 × the block *input* (16)
    assert block.body[3].groups == 96 and block.body[3].stride == (2, 2)
    assert not block.residual
    # stochastic depth grows linearly with the block index: 0.2 · i / 16 (16 blocks in B0)
    assert model.stages[1][1].drop_path.p == pytest.approx(0.2 * 2 / 16)
    assert model.stages[6][0].drop_path.__class__.__name__ == "Identity"  # 192 -> 320: no shortcut
    assert model.stages[5][3].drop_path.p == pytest.approx(0.2 * 14 / 16)


def test_op_replaces_the_depthwise_conv():
    model = create_model("efficientnet_b0", op="dwsep", num_classes=3)
    mixer = model.stages[2][0].body[3]  # 24 -> 144 expanded, 5×5, stride 2
    assert type(mixer).__module__.startswith("convzoo.ops")
    assert (mixer.in_channels, mixer.out_channels, mixer.kernel_size, mixer.stride) == (144, 144, (5, 5), (2, 2))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(ValueError, match=r"efficientnet_b0: op 'se' cannot replace the conv at stages\.1\.0\.mixer"):
        create_model("efficientnet_b0", op="se")
