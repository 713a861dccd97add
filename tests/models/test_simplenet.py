"""SimpleNet (S34): the 13-layer CIFAR network of the official configuration."""

from __future__ import annotations

import torch
from torch import nn

from convzoo.models import create_model


def test_thirteen_conv_layers_four_pools_one_linear():
    model = create_model("simplenet_cifar_5m")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    # official simplenet_cifar_5m widths; conv 11 and 12 are 1×1 ("k1")
    assert [m.out_channels for m in convs] == [64, 128, 128, 128, 128, 128, 256, 256, 256, 512, 2048, 256, 256]
    assert [m.kernel_size[0] for m in convs] == [3] * 10 + [1, 1, 3]
    assert len([m for m in model.modules() if isinstance(m, nn.MaxPool2d)]) == 4
    assert len([m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]) == 13
    assert len([m for m in model.modules() if isinstance(m, nn.Dropout)]) == 12  # after every conv but the last
    assert [m.out_features for m in model.modules() if isinstance(m, nn.Linear)] == [10]


def test_a_32x32_image_ends_on_a_2x2_map_pooled_by_its_maximum():
    model = create_model("simplenet_cifar_5m").eval()
    x = torch.randn(2, 3, 32, 32)
    features = model.forward_features(x)
    assert features.shape == (2, 256, 2, 2)  # four 2×2 pools: 32 / 16
    torch.testing.assert_close(model.forward_head(features, pre_logits=True), features.amax(dim=(2, 3)))
