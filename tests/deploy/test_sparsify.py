"""``sparsify`` (S107): every 1×1 conv is pruned to the asked sparsity and swapped for the sparse kernel, and the
model's output equals a dense model pruned by an independent loop (native and torch paths), for a
MobileNet-style stack and a registered model; other convs stay dense; errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from convzoo.deploy.sparsify import SparsePointwiseConv2d, sparsify
from convzoo.kernels import sparse_pointwise
from convzoo.models import create_model
from convzoo.registry import MODELS, TRANSFORMS


def _mobilenet_block_stack() -> nn.Module:
    """Depthwise-separable blocks (MobileNet-v1), one with a strided 1×1 conv and a biased one."""
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    for c_in, c_out in ((16, 32), (32, 64)):
        layers += [nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False), nn.BatchNorm2d(c_in), nn.ReLU()]
        layers += [nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    layers += [nn.Conv2d(64, 48, 1, stride=2, bias=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, 10)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2)
    return model.eval()


def _pruned_dense(model: nn.Module, sparsity: float) -> nn.Module:
    """Each 1×1 conv's weight with the magnitudes up to its ``round(s · numel)``-th smallest zeroed (random weights
    have no ties)."""
    pruned = copy.deepcopy(model)
    for m in pruned.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1):
            magnitude = m.weight.data.abs()
            threshold = magnitude.flatten().kthvalue(round(sparsity * magnitude.numel())).values
            m.weight.data[magnitude <= threshold] = 0.0
    return pruned


PATHS = [True, False] if sparse_pointwise.available() else [False]


@pytest.mark.parametrize("native", PATHS, ids=lambda n: "native" if n else "torch")
def test_equals_the_pruned_dense_model(native):
    model = _mobilenet_block_stack()
    sparse = sparsify(model, sparsity=0.9)
    modules = [m for m in sparse.modules() if isinstance(m, SparsePointwiseConv2d)]
    assert len(modules) == 3
    for m in modules:
        m.use_native = native
        assert m.values.numel() == m.in_channels * m.out_channels - round(0.9 * m.in_channels * m.out_channels)
    assert sum(isinstance(m, nn.Conv2d) for m in sparse.modules()) == 3  # the stem and the depthwise convs stay
    x = torch.randn(2, 3, 19, 17)
    with torch.no_grad():
        torch.testing.assert_close(sparse(x), _pruned_dense(model, 0.9)(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model(x), _mobilenet_block_stack()(x))  # the input model is left alone


def test_registered_model_and_transform():
    model = create_model("shufflenet_g1", **MODELS.get("shufflenet_g1").info.test_cfg).eval()
    sparse = TRANSFORMS.get("sparsify")(model, sparsity=0.8)
    assert any(isinstance(m, SparsePointwiseConv2d) for m in sparse.modules())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(sparse(x), _pruned_dense(model, 0.8)(x), rtol=1e-4, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError, match="holds no 1×1 convolution"):
        sparsify(nn.Sequential(nn.Conv2d(3, 3, 3)))
    with pytest.raises(ValueError, match="sparsity must be a number in"):
        sparsify(nn.Conv2d(3, 3, 1), sparsity=1.0)
    with pytest.raises(ValueError, match="expected a 1×1, one-group"):
        SparsePointwiseConv2d.from_conv(nn.Conv2d(4, 4, 1, groups=2))
