"""Initialisers and the drop-path schedule."""

import math

import pytest
import torch
from torch import nn

from convzoo.core.init import conv_weight, drop_path_rates, trunc_normal_init_


def test_drop_path_rates_match_the_linspace_and_step_rules():
    for last, count in ((0.1, 18), (0.4, 36), (0.0, 4), (0.3, 1)):
        expected = torch.linspace(0, last, count, dtype=torch.float64).tolist()
        assert drop_path_rates(last, count) == pytest.approx(expected, abs=1e-15)
    assert drop_path_rates(0.2, 16, endpoint=False) == pytest.approx([0.2 * i / 16 for i in range(16)])
    assert drop_path_rates(0.5, 0) == []


def test_conv_weight_is_initialised_like_nn_conv():
    torch.manual_seed(0)
    weight, bias = conv_weight(8, 3, (3, 5), bias=True)
    torch.manual_seed(0)
    reference = nn.Conv2d(3, 8, (3, 5))
    torch.testing.assert_close(weight, reference.weight)
    torch.testing.assert_close(bias, reference.bias)
    assert conv_weight(4, 2, (3,), bias=False)[1] is None


def test_trunc_normal_init_skips_and_scales_the_head():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 64, 3), nn.Linear(64, 64))
    model.head = nn.Module()
    model.head.fc = nn.Linear(64, 10)
    kept = model[1].weight.detach().clone()
    trunc_normal_init_(model, std=0.02, skip={id(model[1])}, head_init_scale=0.5)
    torch.testing.assert_close(model[1].weight, kept)
    assert model[0].bias.abs().max() == 0
    std = model[0].weight.std().item()
    assert math.isclose(std, 0.02, rel_tol=0.1)
    assert model.head.fc.weight.std().item() == pytest.approx(0.01, rel=0.15)
