"""ResidualBlock: act(body(x) + shortcut(x)) with the identity, a projection and no activation."""

from __future__ import annotations

import torch
from torch import nn

from convzoo.layers.residual import ResidualBlock


def test_identity_shortcut_and_activation():
    body = nn.Conv2d(4, 4, 3, padding=1)
    block = ResidualBlock(body, act=nn.ReLU())
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(body(x) + x))


def test_projection_shortcut_without_activation():
    body, shortcut = nn.Conv2d(4, 8, 3, 2, 1), nn.Conv2d(4, 8, 1, 2)
    block = ResidualBlock(body, shortcut)
    x = torch.randn(2, 4, 6, 6)
    torch.testing.assert_close(block(x), body(x) + shortcut(x))
    assert set(block.state_dict()) == {"body.weight", "body.bias", "shortcut.weight", "shortcut.bias"}
