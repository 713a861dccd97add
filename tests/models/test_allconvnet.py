"""All-CNN-C (S20): nine conv layers and no pooling layer; strided convs take the pools' place (Tables 1-2)."""

from __future__ import annotations

import torch
from torch import nn

from convzoo.models import create_model

# S20 Tables 1-2, All-CNN-C: (kernel, out channels, stride, padding) of its nine conv layers
TABLE = [
    (3, 96, 1, 1),
    (3, 96, 1, 1),
    (3, 96, 2, 1),
    (3, 192, 1, 1),
    (3, 192, 1, 1),
    (3, 192, 2, 1),
    (3, 192, 1, 0),
    (1, 192, 1, 0),
    (1, 10, 1, 0),
]


def test_layers_follow_the_paper_and_nothing_pools():
    model = create_model("all_cnn_c")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(m.kernel_size[0], m.out_channels, m.stride[0], m.padding[0]) for m in convs] == TABLE
    assert all(m.bias is not None for m in convs)
    pools = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.BatchNorm2d, nn.Linear)
    assert not [m for m in model.modules() if isinstance(m, pools)]


def test_spatial_sizes_32_16_8_then_6x6_averaging():
    model = create_model("all_cnn_c").eval()
    x = torch.randn(1, 3, 32, 32)
    assert [f.shape[-1] for f in model.forward_stages(x)] == [32, 16, 8]
    assert model.head.top(model.forward_features(x)).shape[-2:] == (6, 6)  # "global averaging over 6×6"


def test_class_scores_are_rectified_then_averaged():
    model = create_model("all_cnn_c").eval()
    x = torch.randn(2, 3, 32, 32)
    top = model.head.top(model.forward_features(x))
    expected = torch.relu(model.head.fc(top)).mean(dim=(2, 3))
    torch.testing.assert_close(model(x), expected)
    assert (model(x) >= 0).all()
