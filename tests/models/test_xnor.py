"""XNOR-Net models (S8): binary 3×3 convs with float first and last layers; the digits model learns."""

from __future__ import annotations

import torch
from torch import nn

from convzoo.models import create_model
from convzoo.ops.binary import BinaryConv
from convzoo.train.trainer import TrainConfig, train


def test_resnet18_binarises_exactly_resnet18_3x3_convs():
    with torch.device("meta"):
        model = create_model("xnor_resnet18")
    binary = [m for m in model.modules() if isinstance(m, BinaryConv)]
    assert len(binary) == 16 and all(m.mode == "xnor" and m.bias is None for m in binary)
    # ResNet-18's 3×3 convs by stage (by hand): 4·64·64·9, 64·128·9 + 3·128·128·9, 128·256·9 + 3·256·256·9, ...
    expected = (
        4 * 64 * 64 * 9 + (64 * 128 + 3 * 128 * 128) * 9 + (128 * 256 + 3 * 256**2) * 9 + (256 * 512 + 3 * 512**2) * 9
    )
    assert sum(m.weight.numel() for m in binary) == expected == 10_985_472
    # first and last layers stay float
    assert isinstance(model.stem[0], nn.Conv2d) and model.stem[0].kernel_size == (7, 7)
    assert isinstance(model.head.fc, nn.Linear)
    # block order BN → BinActiv → BinConv
    unit = model.stages[1][0].body[0]
    assert isinstance(unit[0], nn.BatchNorm2d) and isinstance(unit[1], BinaryConv) and unit[1].stride == (2, 2)


def test_bwn_mode_and_op_override():
    model = create_model("xnor_digits", mode="bwn")
    assert {m.mode for m in model.modules() if isinstance(m, BinaryConv)} == {"bwn"}
    model = create_model("xnor_digits", op="conv")
    assert not any(isinstance(m, BinaryConv) for m in model.modules())


def test_digits_model_trains_well_above_chance(tmp_path):
    result = train(
        TrainConfig(model="xnor_digits", optimizer="adamw", epochs=3, out=str(tmp_path), progress=False, seed=0)
    )
    assert result.test_accuracy > 0.5, result.test_accuracy
