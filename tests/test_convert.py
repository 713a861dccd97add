"""convert(): swaps convolutions in any nn.Module and reports every layer it could not honour."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo import convert, create_op
from convzoo.ops.shift import SpatialShiftConv


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def small_resnet() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, 1, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        BasicBlock(16, 16, 1),
        BasicBlock(16, 32, 2),
        nn.Conv2d(32, 32, 3, 1, 1, dilation=1, groups=32),  # depthwise
        nn.Conv2d(32, 32, 3, 1, 2, dilation=2),  # dilated
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def test_convert_small_resnet_to_shift():
    model = small_resnet()
    report = convert(model, "shift")
    replaced = {r.name for r in report.replaced}
    skipped = {s.name: s.reason for s in report.skipped}
    assert replaced == {"3.conv1", "3.conv2", "4.conv1", "4.conv2"}
    assert "needs at least one input channel per direction" in skipped["0"]  # 3 input channels
    assert "1x1 pointwise conv" in skipped["4.down.0"]
    assert "groups=32 (the target takes no groups)" in skipped["5"]
    assert "dilation (2, 2) (the target takes no dilation)" in skipped["6"]
    assert isinstance(model[4].conv1, SpatialShiftConv) and model[4].conv1.stride == (2, 2)
    assert model[4].conv1.has_bias is False
    assert model(torch.randn(2, 3, 9, 9)).shape == (2, 10)
    assert "4 replaced" in str(report)


def test_convert_to_conv_honours_groups_and_dilation():
    model = small_resnet()
    report = convert(model, "conv", where=["5", "6"])
    assert [r.name for r in report.replaced] == ["5", "6"]
    assert model[5].groups == 32 and model[6].dilation == (2, 2)
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 10)


def test_convert_where_callable_and_options():
    model = small_resnet()
    report = convert(model, "cp", where=lambda name, m: name.startswith("3."), rank=4)
    assert [r.name for r in report.replaced] == ["3.conv1", "3.conv2"]
    assert model[3].conv1.rank == 4


def test_convert_reports_padding_that_is_not_same():
    model = nn.Sequential(nn.Conv2d(4, 4, 3, padding=0), nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"))
    report = convert(model, "conv")
    reasons = [s.reason for s in report.skipped]
    assert "padding (0, 0) is not 'same' (1, 1)" in reasons[0]
    assert "padding_mode='reflect'" in reasons[1]
    assert not report.replaced


def test_convert_one_dimensional_model():
    model = nn.Sequential(nn.Conv1d(4, 8, 5, padding=2), nn.ReLU(), nn.Conv1d(8, 8, 3, stride=2, padding=1))
    report = convert(model, "cp")
    assert [r.name for r in report.replaced] == ["0", "2"]
    assert model[2].dim == 1 and model(torch.randn(2, 4, 11)).shape == (2, 8, 6)
    report = convert(model, "asym")
    assert all("supports dims (2, 3)" in s.reason for s in report.skipped)


def test_convert_registered_ops_and_dtype():
    model = nn.Sequential(create_op("conv", 4, 4), nn.ReLU()).double()
    report = convert(model, "dwsep")
    assert [r.name for r in report.replaced] == ["0"]
    assert model[0].pointwise.dtype == torch.float64


def test_convert_bad_arguments():
    with pytest.raises(ValueError, match=r"unknown op 'shfit'; did you mean 'shift'"):
        convert(small_resnet(), "shfit")
    with pytest.raises(TypeError, match=r"cp: unknown option\(s\) rnk; it takes rank"):
        convert(small_resnet(), "cp", rnk=3)


def test_convert_where_that_matches_no_layer_names_the_layers_there_are():
    model = small_resnet()
    with pytest.raises(ValueError, match=r"convert: where='3\.conv3' matches no convolution of Sequential; ") as error:
        convert(model, "shift", where="3.conv3")
    assert "'3.conv1'" in str(error.value) and "'3.conv2'" in str(error.value)  # the close names first
    with pytest.raises(ValueError, match=r"where=\['layer1\.\*', 'stem'\] matches no convolution") as error:
        convert(model, "shift", where=["layer1.*", "stem"])
    assert "'0'" in str(error.value) and "(8 in all)" in str(error.value)
    assert all(isinstance(m, nn.Conv2d) for m in (model[0], model[3].conv1))  # nothing was replaced
    with pytest.raises(ValueError, match=r"where='conv' matches no layer: Linear has no convolution"):
        convert(nn.Linear(4, 4), "shift", where="conv")
    assert convert(model, "shift", where=lambda name, m: False).replaced == []  # a function may select nothing
