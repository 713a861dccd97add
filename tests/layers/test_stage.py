"""Stage: downsample then blocks, in channels-first or channels-last form."""

from __future__ import annotations

import torch
from torch import nn

from convzoo.layers.stage import Stage


class _LastDimProbe(nn.Module):
    """Adds the index of each channel along the last dim: tells which dim the stage hands its blocks as C."""

    def forward(self, x):
        return x + torch.arange(x.shape[-1], dtype=x.dtype)


def test_downsample_then_blocks():
    down = nn.Conv2d(3, 4, 2, 2)
    stage = Stage(down, [nn.ReLU(), nn.Identity()])
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(stage(x), torch.relu(down(x)))
    assert isinstance(Stage(None, []).downsample, nn.Identity)


def test_channels_last_blocks_see_channels_last():
    x = torch.zeros(1, 3, 2, 5)
    out = Stage(None, [_LastDimProbe()], channels_last=True)(x)
    assert out.shape == (1, 3, 2, 5)
    assert out[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]  # offsets along C
    assert out[0, 0, 0].tolist() == [0.0] * 5  # not along W
