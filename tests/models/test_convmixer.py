"""ConvMixer (S22): the connection pattern (only the depthwise half is residual), variant settings, one stage."""

from __future__ import annotations

import torch
from torch import nn

from convzoo.models import create_model


def _silence(bn: nn.BatchNorm2d) -> None:
    with torch.no_grad():
        bn.weight.zero_()
        bn.bias.zero_()


def test_only_the_depthwise_half_is_residual():
    model = create_model("convmixer_768_32", depth=1, dim=16).eval()
    layer = model.stages[0][0]
    x = torch.randn(2, 16, 5, 5)
    _silence(layer.spatial[-1])  # spatial branch now outputs 0: the layer is pointwise(x + 0)
    torch.testing.assert_close(layer(x), layer.pointwise(x))
    _silence(layer.pointwise[-1])  # the pointwise half has no skip: its zero output is the layer's output
    torch.testing.assert_close(layer(x), torch.zeros_like(x))


def test_variants_follow_the_paper():
    for name, dim, k, act in (("convmixer_768_32", 768, 7, nn.ReLU), ("convmixer_1536_20", 1536, 9, nn.GELU)):
        model = create_model(name, depth=1)
        conv = model.stages[0][0].spatial[0]
        assert conv.kernel_size == (k, k) and conv.groups == dim
        assert model.stem[0].kernel_size == (7, 7) and model.stem[0].stride == (7, 7)
        assert isinstance(model.stem[1], act) and isinstance(model.stages[0][0].pointwise[1], act)


def test_single_stage_features_at_224():
    model = create_model("convmixer_768_32", depth=1, dim=16, features_only=True)
    (feature,) = model(torch.randn(2, 3, 224, 224))
    assert feature.shape == (2, 16, 32, 32)  # 224 / 7 patches per side
    assert [(i.channels, i.reduction) for i in model.feature_info] == [(16, 7)]


def test_op_replaces_the_depthwise_conv():
    model = create_model("convmixer_1536_20", op="shift", depth=2, dim=32, num_classes=3)
    assert all(type(layer.spatial[0]).__module__ == "convzoo.ops.shift" for layer in model.stages[0])
    out = model(torch.randn(2, 3, 28, 28))
    assert out.shape == (2, 3)
    out.sum().backward()
