"""MetaNeXtBlock against x + γ·mlp(norm(mixer(x))) in both layouts, layer scale off, drop path."""

from __future__ import annotations

import torch
from torch import nn

from convzoo.layers.layer_scale import LayerScale
from convzoo.layers.metanext_block import MetaNeXtBlock
from convzoo.layers.mlp import Mlp


def _perturbed(block: nn.Module) -> nn.Module:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return block.double().eval()


def test_channels_last_block_is_convnext_formula():
    torch.manual_seed(0)
    c = 6
    mixer, norm, mlp = nn.Conv2d(c, c, 3, padding=1, groups=c), nn.LayerNorm(c), Mlp(c, 4 * c)
    block = _perturbed(MetaNeXtBlock(mixer, norm, mlp, channels=c, channels_last=True))
    x = torch.randn(2, c, 5, 5, dtype=torch.float64)
    y = mlp(norm(mixer(x).permute(0, 2, 3, 1))) * block.layer_scale.scale  # (N, H, W, C)
    torch.testing.assert_close(block(x), x + y.permute(0, 3, 1, 2))


def test_channels_first_block_is_inceptionnext_formula():
    torch.manual_seed(0)
    c = 6
    mixer, norm, mlp = nn.Conv2d(c, c, 3, padding=1, groups=c), nn.BatchNorm2d(c), Mlp(c, 3 * c, dim=2)
    block = _perturbed(MetaNeXtBlock(mixer, norm, mlp, channels=c))
    x = torch.randn(2, c, 5, 5, dtype=torch.float64)
    expected = x + mlp(norm(mixer(x))) * block.layer_scale.scale.view(1, -1, 1, 1)
    torch.testing.assert_close(block(x), expected)


def test_layer_scale_init_and_disabled():
    block = MetaNeXtBlock(nn.Identity(), nn.Identity(), Mlp(4, 8, dim=2), channels=4, layer_scale_init=1e-6)
    assert isinstance(block.layer_scale, LayerScale) and torch.all(block.layer_scale.scale == 1e-6)
    plain = MetaNeXtBlock(nn.Identity(), nn.Identity(), Mlp(4, 8, dim=2), channels=4, layer_scale_init=0.0)
    assert isinstance(plain.layer_scale, nn.Identity)
    x = torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(plain(x), x + plain.mlp(x))


def test_drop_path_drops_the_branch_per_sample():
    torch.manual_seed(0)
    block = MetaNeXtBlock(nn.Identity(), nn.Identity(), Mlp(4, 8, dim=2), channels=4, drop_path=0.5).train()
    x = torch.randn(64, 4, 2, 2)
    branch = (block(x) - x).flatten(1)
    dropped = (branch == 0).all(1)
    assert 0 < dropped.sum() < 64
    assert block.drop_path.p == 0.5
