"""LayerScale: per-channel scale along C in either layout, the optional form, argument errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.layers.layer_scale import LayerScale, optional_layer_scale


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (1, 3, 2, 2, 2)])
def test_channels_first_scales_dim_1(shape):
    scale = LayerScale(3, 0.5).double()
    with torch.no_grad():
        scale.scale.copy_(torch.tensor([1.0, -2.0, 3.0]))
    x = torch.randn(shape, dtype=torch.float64)
    expected = torch.stack([x[:, c] * s for c, s in enumerate((1.0, -2.0, 3.0))], dim=1)
    torch.testing.assert_close(scale(x), expected, rtol=0, atol=0)


def test_channels_last_scales_the_last_dim_and_agrees_with_channels_first():
    first, last = LayerScale(4, 1e-6), LayerScale(4, 1e-6, channels_last=True)
    with torch.no_grad():
        first.scale.uniform_(-1, 1)
        last.scale.copy_(first.scale)
    x = torch.randn(2, 4, 3, 5)
    torch.testing.assert_close(last(x.movedim(1, -1)).movedim(-1, 1), first(x), rtol=0, atol=0)


def test_init_value_and_parameter_count():
    scale = LayerScale(7, 1e-5)
    assert torch.all(scale.scale == 1e-5) and sum(p.numel() for p in scale.parameters()) == 7
    scale(torch.randn(2, 7, 3, 3)).sum().backward()
    assert scale.scale.grad is not None


def test_optional_layer_scale_is_identity_when_disabled():
    assert isinstance(optional_layer_scale(4, 0.0), nn.Identity)
    assert isinstance(optional_layer_scale(4, -1.0), nn.Identity)
    kept = optional_layer_scale(4, 1e-6, channels_last=True)
    assert isinstance(kept, LayerScale) and kept.channels_last


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^layer_scale: channels must be a positive int, got 0"):
        LayerScale(0)
    with pytest.raises(ValueError, match=r"^layer_scale: init must be a finite number, got nan"):
        LayerScale(3, float("nan"))
