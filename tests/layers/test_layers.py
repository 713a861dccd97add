"""Layers: space-to-depth round trip and pixel (un)shuffle parity, channel shuffle as a permutation, StarReLU,
DropPath, channels-first LayerNorm."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.layers.activations import StarReLU
from convzoo.layers.drop_path import DropPath, drop_path
from convzoo.layers.norm import LayerNormChannelsFirst
from convzoo.layers.shuffle import ChannelShuffle, channel_shuffle
from convzoo.layers.space_to_depth import depth_to_space, space_to_depth


@pytest.mark.parametrize(("shape", "scale"), [((2, 3, 8), 2), ((2, 3, 6, 9), 3), ((1, 2, 4, 6, 2), 2)])
def test_space_to_depth_round_trip(shape, scale):
    x = torch.randn(shape)
    y = space_to_depth(x, scale)
    assert y.shape == (shape[0], shape[1] * scale ** (len(shape) - 2), *(s // scale for s in shape[2:]))
    torch.testing.assert_close(depth_to_space(y, scale), x, rtol=0, atol=0)


def test_space_to_depth_matches_pixel_unshuffle_in_2d():
    x = torch.randn(2, 3, 6, 4)
    torch.testing.assert_close(space_to_depth(x, 2), F.pixel_unshuffle(x, 2), rtol=0, atol=0)
    torch.testing.assert_close(depth_to_space(x.repeat(1, 4, 1, 1), 2), F.pixel_shuffle(x.repeat(1, 4, 1, 1), 2))


def test_space_to_depth_places_offsets_after_the_channel():
    x = torch.arange(4.0).view(1, 1, 4)  # 1-d: [0, 1, 2, 3]
    assert space_to_depth(x, 2).tolist() == [[[0.0, 2.0], [1.0, 3.0]]]


def test_space_to_depth_bad_sizes():
    with pytest.raises(ValueError, match=r"space_to_depth: spatial size \(5, 4\) is not divisible by scale 2"):
        space_to_depth(torch.randn(1, 1, 5, 4), 2)
    with pytest.raises(ValueError, match=r"depth_to_space: channels 3 are not divisible by scale\^2 = 4"):
        depth_to_space(torch.randn(1, 3, 2, 2), 2)


def test_channel_shuffle_is_the_transpose_permutation():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    # groups g=2 of n=3: output channel j·g + i is input channel i·n + j
    assert channel_shuffle(x, 2).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    y = ChannelShuffle(3)(torch.randn(2, 12, 4, 4))
    assert y.shape == (2, 12, 4, 4)


def test_channel_shuffle_is_a_permutation_and_inverse_of_its_transpose():
    x = torch.randn(2, 12, 3)
    shuffled = channel_shuffle(x, 3)
    assert sorted(shuffled[0, :, 0].tolist()) == sorted(x[0, :, 0].tolist())
    torch.testing.assert_close(channel_shuffle(shuffled, 4), x, rtol=0, atol=0)


def test_channel_shuffle_bad_groups():
    with pytest.raises(ValueError, match=r"channel_shuffle: channels \(6\) must be divisible by groups, got groups=4"):
        channel_shuffle(torch.randn(1, 6, 2, 2), 4)


def test_star_relu_formula_and_learnable_scalars():
    act = StarReLU(scale=0.8944, bias=-0.4472)
    x = torch.tensor([-1.0, 0.0, 2.0])
    torch.testing.assert_close(act(x), torch.tensor([-0.4472, -0.4472, 0.8944 * 4 - 0.4472]))
    act(x).sum().backward()
    assert act.scale.grad is not None and act.bias.grad is not None
    assert StarReLU().scale.item() == 1.0 and StarReLU().bias.item() == 0.0


def test_drop_path_drops_whole_samples_and_keeps_expectation():
    torch.manual_seed(0)
    x = torch.ones(4000, 3, 2)
    y = drop_path(x, 0.25, training=True)
    per_sample = y.flatten(1)
    assert ((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1)).all()
    assert abs(y.mean().item() - 1.0) < 0.05
    torch.testing.assert_close(DropPath(0.5).eval()(x), x)


def test_drop_path_bad_probability():
    with pytest.raises(ValueError, match=r"drop_path: p must be in \[0, 1\), got 1.0"):
        DropPath(1.0)


@pytest.mark.parametrize("shape", [(2, 5, 7), (2, 5, 3, 4), (1, 5, 2, 3, 2)])
def test_layer_norm_channels_first_equals_per_pixel_formula(shape):
    norm = LayerNormChannelsFirst(5, eps=1e-6).double()
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(shape, dtype=torch.float64)
    mean = x.mean(dim=1, keepdim=True)
    var = x.var(dim=1, unbiased=False, keepdim=True)
    view = (1, 5) + (1,) * (len(shape) - 2)
    expected = (x - mean) / torch.sqrt(var + 1e-6) * norm.weight.view(view) + norm.bias.view(view)
    torch.testing.assert_close(norm(x), expected)


def test_layer_norm_channels_first_wrong_channels():
    with pytest.raises(ValueError, match=r"layer_norm_cf: expected \(N, 5, \*S\), got shape \(1, 4, 2, 2\)"):
        LayerNormChannelsFirst(5)(torch.randn(1, 4, 2, 2))
