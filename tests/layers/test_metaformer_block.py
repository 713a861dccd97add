"""MetaFormerBlock against s₁·x + mixer(norm₁(x)), s₂·x + mlp(norm₂(x)) in both layouts, with and without res-scale."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.layers.metaformer_block import MetaFormerBlock
from convzoo.layers.mlp import Mlp


def _block(channels_last: bool, res_scale: bool) -> MetaFormerBlock:
    c = 6
    if channels_last:
        norm1, norm2, mlp = nn.LayerNorm(c), nn.LayerNorm(c), Mlp(c, 4 * c)
        mixer = nn.Linear(c, c)
    else:
        norm1, norm2, mlp = nn.GroupNorm(1, c), nn.GroupNorm(1, c), Mlp(c, 4 * c, dim=2)
        mixer = nn.Conv2d(c, c, 3, padding=1, groups=c)
    block = MetaFormerBlock(norm1, mixer, norm2, mlp, channels=c, res_scale=res_scale, channels_last=channels_last)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return block.double()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("res_scale", [False, True])
def test_block_against_its_formula(channels_last, res_scale):
    block = _block(channels_last, res_scale)
    shape = (2, 5, 5, 6) if channels_last else (2, 6, 5, 5)
    x = torch.randn(shape, dtype=torch.float64)

    def scale(t, module):
        if not res_scale:
            return t
        return t * (module.scale if channels_last else module.scale.view(-1, 1, 1))

    x1 = scale(x, block.res_scale1) + block.token_mixer(block.norm1(x))
    expected = scale(x1, block.res_scale2) + block.mlp(block.norm2(x1))
    torch.testing.assert_close(block(x), expected)


def test_res_scales_start_at_one_and_are_absent_when_off():
    block = _block(False, True)
    fresh = MetaFormerBlock(nn.Identity(), nn.Identity(), nn.Identity(), nn.Identity(), channels=3, res_scale=True)
    assert torch.all(fresh.res_scale1.scale == 1) and torch.all(fresh.res_scale2.scale == 1)
    assert "res_scale1.scale" in block.state_dict()
    assert not [k for k in _block(False, False).state_dict() if "res_scale" in k]
