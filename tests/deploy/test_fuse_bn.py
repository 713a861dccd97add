"""fuse_bn: BN folded into the conv, linear layer or linear op before it; equal to the eval-mode model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.deploy import find_conv_bn_pairs, fuse_bn
from convzoo.models import create_model
from convzoo.ops.base import create_op
from convzoo.registry import MODELS, TRANSFORMS
from convzoo.testing import randomize_batchnorm_


def _bns(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def _assert_close(expected, got, rtol=1e-5):
    scale = expected.abs().max().item()
    assert (got - expected).abs().max().item() <= rtol * scale, (got - expected).abs().max().item()


def test_registered_as_a_transform():
    assert TRANSFORMS.get("fuse_bn").obj is fuse_bn


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_conv_bn_matches_the_hand_formula_in_float64(dim):
    conv = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dim - 1](3, 5, 3, padding=1, bias=True)
    bn = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)[dim - 1](5)
    model = randomize_batchnorm_(nn.Sequential(conv, bn)).double()
    x = torch.randn(2, 3, *([6] * dim), dtype=torch.float64)
    fused = fuse_bn(model, x)
    assert _bns(fused) == 0 and _bns(model) == 1  # a copy; the original keeps its BN
    view = (1, -1) + (1,) * dim
    y = conv(x)
    expected = (y - bn.running_mean.view(view)) / torch.sqrt(bn.running_var.view(view) + bn.eps)
    expected = expected * bn.weight.view(view) + bn.bias.view(view)
    torch.testing.assert_close(fused(x), expected, rtol=1e-12, atol=1e-12)


def test_linear_bn1d():
    model = randomize_batchnorm_(nn.Sequential(nn.Linear(6, 4, bias=False), nn.BatchNorm1d(4))).eval()
    x = torch.randn(3, 6)
    fused = fuse_bn(model, x)
    assert _bns(fused) == 0
    _assert_close(model(x), fused(x))


def test_linear_op_folds_into_its_dense_kernel():
    model = randomize_batchnorm_(nn.Sequential(create_op("asym", 4, 6, 3), nn.BatchNorm2d(6), nn.ReLU())).eval()
    x = torch.randn(2, 4, 7, 7)
    fused = fuse_bn(model, x)
    assert isinstance(fused[0], nn.Conv2d) and isinstance(fused[1], nn.Identity)
    _assert_close(model(x), fused(x))


class _Shared(nn.Module):
    """The conv output is read by the BN and by the residual: folding would change the residual."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


def test_an_output_read_twice_is_not_fused():
    model = randomize_batchnorm_(_Shared()).eval()
    x = torch.randn(2, 4, 5, 5)
    assert find_conv_bn_pairs(model, x) == []
    fused = fuse_bn(model, x)
    assert _bns(fused) == 1
    _assert_close(model(x), fused(x))


@pytest.mark.parametrize("name", ["resnet18", "resnet20", "vgg11_bn", "shufflenet_g1"])
def test_models_lose_every_bn_and_keep_their_output(name):
    entry = MODELS.get(name)
    torch.manual_seed(0)
    model = randomize_batchnorm_(create_model(name, **entry.info.test_cfg, num_classes=10)).eval()
    x = torch.randn(2, entry.info.input_size[0], entry.info.test_size, entry.info.test_size)
    fused = fuse_bn(model, x)
    assert _bns(fused) < _bns(model)
    if name.startswith("resnet"):
        assert _bns(fused) == 0
    with torch.no_grad():
        _assert_close(model(x), fused(x))


def test_a_module_called_twice_is_not_fused():
    conv, bn = nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)
    model = randomize_batchnorm_(nn.Sequential(conv, bn, conv, bn)).eval()  # shared: one fold cannot serve both calls
    x = torch.randn(1, 3, 5, 5)
    assert find_conv_bn_pairs(model, x) == []
    _assert_close(model(x), fuse_bn(model, x)(x))


def test_linear_on_a_sequence_is_not_paired_with_a_channel_bn():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).eval()  # (N, 4, 4): BN reads axis 1, linear writes axis 2
    assert find_conv_bn_pairs(model, torch.randn(2, 4, 4)) == []
