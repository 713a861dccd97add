"""ConvNeXt (S67): every grid op at the depthwise position, the block's defaults, stochastic depth schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.models import create_model
from convzoo.registry import OPS

GRID_OPS = [e.name for e in OPS.entries() if e.kind == "grid"]
SMALL = {"depths": (1, 1, 1, 1), "dims": (32, 64, 128, 256)}


@pytest.mark.parametrize("op", GRID_OPS)
def test_convnext_tiny_with_every_grid_op(op):
    try:
        model = create_model("convnext_tiny", op=op, num_classes=5, **SMALL)
    except ValueError as error:
        assert str(error).startswith(f"convnext_tiny: op '{op}' cannot replace the conv at "), error
        return
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 5)
    out.sum().backward()
    mixers = [block.mixer for stage in model.stages for block in stage.blocks]
    assert all(type(m).__module__.startswith("convzoo.ops") for m in mixers)


def test_default_block_is_7x7_depthwise_with_layer_scale_1e_6():
    model = create_model("convnext_tiny", **SMALL)
    for stage, width in zip(model.stages, SMALL["dims"], strict=True):
        block = stage.blocks[0]
        assert isinstance(block.mixer, nn.Conv2d)
        assert block.mixer.kernel_size == (7, 7) and block.mixer.groups == width
        assert block.mlp[0].out_features == 4 * width  # S67 §2.4: inverted bottleneck, 4× expansion
        assert torch.all(block.layer_scale.scale == 1e-6)


def test_drop_path_rises_linearly_over_all_blocks():
    with torch.device("meta"):  # only the schedule matters: skip allocating the weights
        model = create_model("convnext_tiny", drop_path_rate=0.3)
    rates = [block.drop_path.p for stage in model.stages for block in stage.blocks]
    assert len(rates) == 3 + 3 + 9 + 3
    expected = [0.3 * i / 17 for i in range(18)]
    assert rates == pytest.approx(expected)


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"convnext_tiny: convnext: depths .* and dims .* equal length"):
        create_model("convnext_tiny", depths=(1, 1, 1))
