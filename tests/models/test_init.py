"""trunc_normal_init_: truncated-normal conv/linear weights, zero biases, skipped modules untouched, head scaled."""

from __future__ import annotations

import torch
from torch import nn

from convzoo import create_op
from convzoo.core.init import trunc_normal_init_
from convzoo.models.base import ClassifierHead
from convzoo.models.registration import modules_inside_ops


def test_trunc_normal_init_skips_operators_and_scales_the_head():
    torch.manual_seed(0)
    model = nn.Module()
    model.conv = nn.Conv2d(64, 64, 3)
    model.op = create_op("dwsep", 8, 8)  # holds raw parameters, no nn.Conv2d
    model.inner = nn.Sequential(create_op("conv", 4, 4))
    model.keep = nn.Conv2d(4, 4, 1)
    model.head = ClassifierHead(64, 10)
    inside = modules_inside_ops(model)
    assert {id(model.op), id(model.inner[0])} <= inside and id(model.conv) not in inside
    kept = model.keep.weight.detach().clone()
    trunc_normal_init_(model, std=0.02, skip={id(model.keep)}, head_init_scale=0.5)
    weight = model.conv.weight
    assert 0.019 < weight.std().item() < 0.021 and abs(weight.mean().item()) < 1e-3
    assert torch.count_nonzero(model.conv.bias) == 0
    assert torch.equal(model.keep.weight, kept)
    assert 0.007 < model.head.fc.weight.std().item() < 0.013  # 0.5 × 0.02
    assert torch.count_nonzero(model.head.fc.bias) == 0
