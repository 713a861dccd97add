"""Mlp: fc → act → fc against its formula, the 1×1-conv form equal to the linear form, children and errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo.layers.activations import StarReLU
from convzoo.layers.mlp import Mlp


def test_linear_form_is_fc2_act_fc1():
    mlp = Mlp(6, 10, 4).double()
    x = torch.randn(2, 3, 6, dtype=torch.float64)
    fc1, fc2 = mlp[0], mlp[2]
    expected = F.gelu(x @ fc1.weight.T + fc1.bias) @ fc2.weight.T + fc2.bias
    torch.testing.assert_close(mlp(x), expected)
    assert (mlp.in_features, mlp.hidden_features, mlp.out_features) == (6, 10, 4)


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_conv_form_equals_linear_form_channels_first(dim):
    linear, conv = Mlp(5, 8).double(), Mlp(5, 8, dim=dim).double()
    with torch.no_grad():
        for lin, cv in ((linear[0], conv[0]), (linear[2], conv[2])):
            cv.weight.copy_(lin.weight.view(cv.weight.shape))
            cv.bias.copy_(lin.bias)
    x = torch.randn(2, 5, *(3,) * dim, dtype=torch.float64)
    torch.testing.assert_close(conv(x), linear(x.movedim(1, -1)).movedim(-1, 1))


def test_options_act_bias_and_default_width():
    mlp = Mlp(4, 16, act=StarReLU, bias=False)
    assert isinstance(mlp[1], StarReLU) and mlp[0].bias is None and mlp[2].bias is None
    assert mlp[2].out_features == 4
    assert sum(p.numel() for p in mlp.parameters()) == 4 * 16 * 2 + 2  # two weights + StarReLU's s, b
    assert isinstance(Mlp(4, 8, dim=2)[0], nn.Conv2d)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^mlp: hidden_features must be a positive int, got 0"):
        Mlp(4, 0)
    with pytest.raises(ValueError, match=r"^mlp: dim must be 1, 2 or 3, got 4"):
        Mlp(4, 8, dim=4)
