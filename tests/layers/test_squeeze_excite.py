"""SqueezeExcite and EffectiveSqueezeExcite against per-sample loops, widths, options, and the `se` op built on it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo.layers.squeeze_excite import EffectiveSqueezeExcite, SqueezeExcite
from convzoo.ops.base import create_op


def _slow_se(x, w1, b1, w2, b2, act, gate):
    out = torch.empty_like(x)
    for n in range(x.shape[0]):
        z = torch.stack([x[n, c].mean() for c in range(x.shape[1])])  # (C,)
        g = gate(w2 @ act(w1 @ z + b1) + b2)  # (C,)
        for c in range(x.shape[1]):
            out[n, c] = x[n, c] * g[c]
    return out


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_squeeze_excite_against_a_per_sample_loop(dim):
    torch.manual_seed(0)
    se = SqueezeExcite(8, reduction=4).double()
    x = torch.randn(2, 8, *(3,) * dim, dtype=torch.float64)
    expected = _slow_se(x, se.fc1_weight, se.fc1_bias, se.fc2_weight, se.fc2_bias, torch.relu, torch.sigmoid)
    torch.testing.assert_close(se(x), expected)


def test_hidden_width_activation_and_gate_options():
    torch.manual_seed(0)
    se = SqueezeExcite(6, hidden=5, act=nn.SiLU, gate=nn.Hardsigmoid).double()
    assert se.hidden_channels == 5 and se.fc1_weight.shape == (5, 6) and se.fc2_weight.shape == (6, 5)
    x = torch.randn(2, 6, 4, 4, dtype=torch.float64)
    expected = _slow_se(x, se.fc1_weight, se.fc1_bias, se.fc2_weight, se.fc2_bias, F.silu, F.hardsigmoid)
    torch.testing.assert_close(se(x), expected)


@pytest.mark.parametrize(("channels", "reduction", "hidden"), [(64, 16, 4), (8, 16, 1), (96, 4, 24)])
def test_hidden_width_and_parameter_count(channels, reduction, hidden):
    se = SqueezeExcite(channels, reduction=reduction)
    assert se.hidden_channels == hidden
    assert sum(p.numel() for p in se.parameters()) == 2 * channels * hidden + hidden + channels
    assert sum(p.numel() for p in SqueezeExcite(channels, reduction=reduction, bias=False).parameters()) == (
        2 * channels * hidden
    )


def test_the_se_op_is_the_layer_under_the_operator_contract():
    op = create_op("se", 16, 16, reduction=4)
    layer = SqueezeExcite(16, reduction=4)
    layer.load_state_dict(op.state_dict())  # the same parameters under the same names
    x = torch.randn(2, 16, 5, 5)
    torch.testing.assert_close(op(x), layer(x), rtol=0, atol=0)


def test_effective_se_against_its_formula():
    torch.manual_seed(0)
    ese = EffectiveSqueezeExcite(5).double()
    x = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    z = x.mean(dim=(2, 3))  # (N, C)
    gate = F.hardsigmoid(z @ ese.fc.weight[:, :, 0, 0].T + ese.fc.bias)  # (N, C)
    torch.testing.assert_close(ese(x), x * gate[:, :, None, None])
    assert sum(p.numel() for p in ese.parameters()) == 5 * 5 + 5


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"^squeeze_excite: reduction must be a positive int, got 0"):
        SqueezeExcite(8, reduction=0)
    with pytest.raises(ValueError, match=r"^squeeze_excite: hidden must be a positive int, got 0"):
        SqueezeExcite(8, hidden=0)
    with pytest.raises(ValueError, match=r"^effective_squeeze_excite: dim must be 1, 2 or 3, got 0"):
        EffectiveSqueezeExcite(8, dim=0)
