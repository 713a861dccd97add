"""trunc_normal_init_: truncated-normal conv/linear weights, zero biases, skipped modules untouched, head scaled."""

from __future__ import annotations

import torch
from torch import nn

from convzoo import create_op
from convzoo.models.base import ClassifierHead, modules_inside_ops, trunc_normal_init_


def test_trunc_normal_init_skips_operators_and_scales_the_head():
    torch.manual_seed(0)
    model = nn.Module()
    model.conv = nn.Conv2d(64, 64, 3)
    model.op = create_op("dwsep", 8, 8)  # holds raw parameters, no nn.Conv2d
    model.inner = nn.Sequential(create_op("conv", 4, 4))
    model.head = ClassifierHead(64, 10)
    kept = model.op.pointwise.detach().clone()
    trunc_normal_init_(model, std=0.02, skip=modules_inside_ops(model), head_init_scale=0.5)
    weight = model.conv.weight
    assert weight.abs().max() <= 0.04 + 1e-7  # truncated at two standard deviations
    assert 0.015 < weight.std().item() < 0.025 and torch.count_nonzero(model.conv.bias) == 0
    assert torch.equal(model.op.pointwise, kept)
    assert model.head.fc.weight.abs().max() <= 0.02 + 1e-7 and torch.count_nonzero(model.head.fc.bias) == 0
