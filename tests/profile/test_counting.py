"""Counting: MACs against closed forms, exact per-row and model totals for known layers, bytes moved, formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convzoo import create_op
from convzoo.profile.counting import count_layers, count_macs, register_macs, tensor_bytes

N = 2  # batch
FLOAT = 4  # bytes per fp32 element


def out_side(size: int, stride: int) -> int:
    return -(-size // stride)


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8])
def test_conv_family_macs_match_closed_forms(size, stride):
    c_in, c_out, k = 8, 12, 3
    h = w = size
    ho = wo = out_side(size, stride)
    x = torch.randn(N, c_in, h, w)
    closed = {
        "conv": c_out * c_in * k * k * ho * wo,
        "dwsep": c_in * k * k * ho * wo + c_out * c_in * ho * wo,
        # k×1 conv C_in → mid(=C_out) with stride (s, 1), then 1×k conv mid → C_out with stride (1, s)
        "asym": c_out * c_in * k * ho * w + c_out * c_out * k * ho * wo,
        # 1×1 C_in → R at full size, k×1 depthwise (s, 1), 1×k depthwise (1, s), 1×1 R → C_out
        "cp": 5 * c_in * h * w + 5 * k * ho * w + 5 * k * ho * wo + c_out * 5 * ho * wo,
        # groups = C_in / G with G = 4 input channels per group
        "e2gc": c_out * 4 * k * k * ho * wo,
    }
    options = {"cp": {"rank": 5}, "e2gc": {"group_size": 4}}
    for name, per_sample in closed.items():
        op = create_op(name, c_in, c_out, k, stride, **options.get(name, {}))
        assert count_macs(op, x) == N * per_sample, name


def test_conv_3d_and_dilated_macs():
    x = torch.randn(1, 4, 5, 6, 7)
    op = create_op("conv", 4, 6, 3, dim=3)
    assert count_macs(op, x) == 6 * 4 * 27 * 5 * 6 * 7
    dilated = create_op("conv", 4, 6, 3, dilation=2)
    assert count_macs(dilated, torch.randn(1, 4, 9, 9)) == 6 * 4 * 9 * 81


def test_shift_costs_only_its_pointwise_conv_but_moves_bytes():
    op = create_op("shift", 8, 16, 3)
    x = torch.randn(N, 8, 6, 6)
    counts = count_layers(op, (x,))
    (row,) = counts.layers
    assert row.macs == N * 16 * 8 * 36  # the shift itself: 0 MACs
    weights = 16 * 8 + 16
    assert row.bytes == (N * 8 * 36 + weights + N * 16 * 36) * FLOAT


def test_pure_shift_module_has_zero_macs_and_its_bytes():
    class Roll(nn.Module):
        def forward(self, x):
            return F.pad(x, (1, 0, 0, 0))[..., :-1]  # shift right by one pixel

    x = torch.randn(N, 3, 5, 5)
    (row,) = count_layers(Roll(), (x,)).layers
    assert row.macs == 0 and row.flops == 0 and row.macs_source == "none"
    assert row.bytes == 2 * x.numel() * FLOAT


def test_op_formula_replaces_the_counter():
    op = create_op("sic", 8, 8, 3, stride=2, topology=(4, 2), block=(2, 2), bottleneck=2)
    x = torch.randn(N, 8, 9, 9)
    (row,) = count_layers(op, (x,)).layers
    assert row.macs_source == "formula"
    low = math.ceil(9 / 4) ** 2  # stride 2 · bottleneck 2
    assert row.macs == N * (8 * 9 + 8 * 4 + 8 * 9) * low


class _Scale(nn.Module):
    """An elementwise product the flop counter does not count."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x):
        return x * self.weight


def test_register_macs_for_a_foreign_module():
    x = torch.randn(N, 4, 3, 3)
    assert count_macs(_Scale(4), x) == 0
    register_macs(_Scale, lambda module, inputs, output: output.numel())
    (row,) = count_layers(nn.Sequential(_Scale(4)), (x,)).layers
    assert (row.macs, row.macs_source) == (x.numel(), "formula")
    with pytest.raises(TypeError, match=r"register_macs: module_type must be an nn.Module subclass, got 3"):
        register_macs(3, len)
    with pytest.raises(TypeError, match=r"register_macs: formula must be callable"):
        register_macs(_Scale, 3)


class _Known(nn.Module):
    """conv → BN → ReLU, a residual-style add in the forward itself, pool, flatten (a view), linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.ReLU()
        self.skip = nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.act(self.bn(self.conv(x)))
        y = y + self.skip(y)
        return self.fc(self.pool(y).flatten(1))


def test_known_model_gets_exact_totals():
    x = torch.randn(N, 3, 6, 6)
    counts = count_layers(_Known(), (x,))
    rows = {(r.name, r.own_ops): r for r in counts.layers}
    image, feature, pooled, logits = N * 3 * 36, N * 8 * 36, N * 8, N * 5  # elements
    bn_state = 4 * 8 * FLOAT + 8  # weight, bias, running mean and var (fp32), num_batches_tracked (int64)
    expected = {
        ("", True): (0, 0, (feature + feature) * FLOAT),  # the add reads y once (twice the same tensor), writes one
        ("conv", False): (8 * 27 + 8, N * 8 * 27 * 36, (image + 8 * 27 + 8 + feature) * FLOAT),
        ("bn", False): (16, 0, 2 * feature * FLOAT + bn_state),
        ("act", False): (0, 0, 2 * feature * FLOAT),
        ("skip", False): (0, 0, 0),  # an identity moves nothing
        ("pool", False): (0, 0, (feature + pooled) * FLOAT),
        ("fc", False): (8 * 5 + 5, N * 8 * 5, (pooled + 45 + logits) * FLOAT),
    }
    assert {k: (r.params, r.macs, r.bytes) for k, r in rows.items()} == expected
    assert counts.params == 8 * 27 + 8 + 16 + 45
    assert counts.macs == counts.counter_macs == N * 8 * 27 * 36 + N * 40
    assert counts.bytes == sum(b for _, _, b in expected.values())
    assert all(r.calls == 1 for r in counts.layers)


def test_functional_ops_in_a_container_are_counted_once():
    class Functional(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(6, 4, 3, 3))
            self.head = nn.Linear(6, 2)

        def forward(self, x):
            y = F.conv2d(x, self.weight, padding=1)  # no nn.Conv2d: hook-based counters miss it
            return self.head(torch.relu(y).mean((2, 3)))

    x = torch.randn(N, 4, 5, 5)
    counts = count_layers(Functional(), (x,))
    own = next(r for r in counts.layers if r.own_ops)
    assert own.macs == N * 6 * 4 * 9 * 25 and own.params == 6 * 4 * 9
    assert counts.macs == counts.counter_macs == own.macs + N * 6 * 2


def test_shared_module_counts_every_call():
    act = nn.ReLU()
    model = nn.Sequential(nn.Conv2d(2, 2, 1), act, nn.Conv2d(2, 2, 1), act)
    x = torch.randn(1, 2, 4, 4)
    rows = {r.name: r for r in count_layers(model, (x,)).layers}
    assert rows["1"].calls == 2 and "3" not in rows  # one row per module, named where first registered
    assert rows["1"].bytes == 2 * 2 * x.numel() * FLOAT


def test_aten_contractions_the_counter_misses():
    class Contractions(nn.Module):
        def forward(self, matrix, vector):
            return torch.mv(matrix, vector).sum() + torch.dot(vector, vector)

    counts = count_layers(Contractions(), (torch.randn(6, 5), torch.randn(5)))
    assert counts.macs == 6 * 5 + 5


def test_bytes_follow_the_dtype_and_count_each_tensor_once():
    x = torch.randn(2, 3, dtype=torch.bfloat16)
    assert tensor_bytes(x, [x, {"again": x}]) == 12
    assert tensor_bytes(torch.zeros(4, dtype=torch.int64), 3, "text") == 32


def test_counting_restores_train_mode_and_leaves_no_hooks():
    model = _Known().train()
    count_layers(model, (torch.randn(1, 3, 4, 4),))
    assert model.training and model.bn.training
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert model.bn.num_batches_tracked.item() == 0  # ran in eval mode: BN statistics untouched
