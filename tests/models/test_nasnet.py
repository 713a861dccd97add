"""NASNet-A (S26): the ScheduledDropPath schedule, the Mobile layout, op= at every depthwise conv, and timm's
NASNet-A Large port (peer: its count and its outputs after mapping the weights)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from convzoo.models import create_model
from convzoo.models.counting import meta_param_count
from convzoo.models.nasnet import NormalCell, ReductionCell, SameConv2d, SamePool2d, ScheduledDropPath

SMALL = {"num_cells": 1, "filters": 16}


def test_scheduled_drop_path_rises_linearly_with_training_and_depth():
    with torch.device("meta"):
        model = create_model("nasnet_a_mobile", drop_path_rate=0.4)
    cells = [cell for stage in model.stages for cell in stage]
    assert len(cells) == 3 * 4 + 4  # 12 normal cells, 2 reduction cells, 2 stem cells: 16 numbered cells
    assert [c.drop.layer_ratio for c in cells] == pytest.approx([(i + 1) / 16 for i in range(16)])
    for t in (0.0, 0.25, 0.5, 1.0, 1.5):
        model.set_training_progress(t)
        expected = [0.4 * (i + 1) / 16 * min(t, 1.0) for i in range(16)]
        assert [c.drop.p for c in cells] == pytest.approx(expected)
    with pytest.raises(ValueError, match=r"nasnet_a_mobile: fraction must be"):
        model.set_training_progress(-0.1)


def test_scheduled_drop_path_drops_whole_samples_at_its_probability():
    drop = ScheduledDropPath(rate=0.6, layer_ratio=0.5)
    x = torch.ones(20_000, 3, dtype=torch.float64)
    assert torch.equal(drop(x), x)  # progress 0: nothing dropped yet
    drop.progress = 1.0  # p = 0.6 · 0.5 · 1 = 0.3
    torch.manual_seed(0)
    y = drop(x)
    kept = y[:, 0] != 0
    assert torch.all((y == 0).all(1) | (y == 1 / 0.7).all(1))  # whole samples, kept ones scaled by 1 / (1 − p)
    assert abs((~kept).double().mean().item() - 0.3) < 0.015
    drop.eval()
    assert torch.equal(drop(x), x)


def test_mobile_is_4_at_1056_with_the_papers_grid():
    with torch.device("meta"):
        model = create_model("nasnet_a_mobile")
        features = model.forward_stages(torch.empty(2, 3, 224, 224))
    assert [tuple(f.shape[1:]) for f in features] == [(44, 56, 56), (264, 28, 28), (528, 14, 14), (1056, 7, 7)]
    kinds = [[type(c) for c in stage] for stage in model.stages]
    assert kinds == [[ReductionCell], [ReductionCell] + [NormalCell] * 4] + [[ReductionCell] + [NormalCell] * 4] * 2
    assert model.head.fc.in_features == 1056


def test_op_replaces_every_depthwise_conv():
    with torch.device("meta"):
        plain = create_model("nasnet_a_mobile")
        replaced = create_model("nasnet_a_mobile", op="asym")
    depthwise = [m for m in plain.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    ops = [m for m in replaced.modules() if type(m).__module__ == "convzoo.ops.factorized"]
    assert len(ops) == len(depthwise) == 2 * (5 * 12 + 5 * 4)  # 5 separable stacks per cell, 2 convs each
    model = create_model("nasnet_a_mobile", op="asym", num_classes=3, **SMALL)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"nasnet_a_mobile: nasnet: filters must be a multiple of 4 .* got 42"):
        create_model("nasnet_a_mobile", filters=42)


@pytest.mark.parametrize("k", [3, 5, 7])
def test_same_conv_samples_the_stride_1_conv_at_odd_places_of_even_sides(k):
    """TensorFlow's SAME at stride 2 pads (k − 1)/2 on each side of an odd side, and one pixel less before an even
    one: the stride-1 symmetric conv read at places 0, 2, 4, ... (odd side) or 1, 3, 5, ... (even side)."""
    torch.manual_seed(0)
    same = SameConv2d(4, 4, k, 2, 0, groups=4, bias=False).double()
    dense = nn.Conv2d(4, 4, k, 1, k // 2, groups=4, bias=False).double()
    dense.weight = same.weight
    odd, even = torch.randn(2, 4, 11, 11, dtype=torch.float64), torch.randn(2, 4, 12, 12, dtype=torch.float64)
    torch.testing.assert_close(same(odd), dense(odd)[..., ::2, ::2], rtol=0, atol=1e-12)
    torch.testing.assert_close(same(even), dense(even)[..., 1::2, 1::2], rtol=0, atol=1e-12)
    symmetric = nn.Conv2d(4, 4, k, 2, k // 2, groups=4, bias=False).double()
    symmetric.weight = same.weight
    assert torch.allclose(same(odd), symmetric(odd)) and not torch.allclose(same(even), symmetric(even))


def _window_reference(x: torch.Tensor, kind: str, count_padding: bool) -> torch.Tensor:
    """3×3/2 SAME pool by loops: window rows 2i − before .. 2i − before + 2, before = 1 (odd side) or 0 (even)."""
    n, c, h, w = x.shape
    before_h, before_w = h % 2, w % 2  # SAME pads 2 − side mod 2 in all, before it half of that (rounded down)
    out = torch.empty(n, c, (h + 1) // 2, (w + 1) // 2, dtype=x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            rows = [r for r in range(2 * i - before_h, 2 * i - before_h + 3) if 0 <= r < h]
            cols = [q for q in range(2 * j - before_w, 2 * j - before_w + 3) if 0 <= q < w]
            window = x[:, :, rows][:, :, :, cols].flatten(2)
            if kind == "max":
                out[:, :, i, j] = window.amax(2)
            else:
                out[:, :, i, j] = window.sum(2) / (9 if count_padding else window.shape[2])
    return out


@pytest.mark.parametrize("side", [9, 10])
@pytest.mark.parametrize(("kind", "count_padding"), [("max", False), ("avg", False), ("avg", True)])
def test_same_pool_against_a_loop(side, kind, count_padding):
    torch.manual_seed(0)
    x = torch.randn(2, 3, side, side + 1, dtype=torch.float64) - 2  # mostly negative: zero padding would win a max
    got = SamePool2d(kind, 3, 2, count_padding=count_padding)(x)
    torch.testing.assert_close(got, _window_reference(x, kind, count_padding), rtol=0, atol=1e-12)


def test_set_padding_swaps_the_stride_2_modules_around_the_same_weights():
    torch.manual_seed(0)
    model = create_model("nasnet_a_large", **SMALL, stem_filters=8).double().eval()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 43, 43, dtype=torch.float64)  # 43 → 21 → 11 → 6 → 3 → 2: odd and even sides
    with torch.no_grad():
        symmetric = model(x)
        notes = model.set_padding("same")
        same = model(x)
        assert len(model.set_padding("timm")) == 4  # only the four reduction cells' stride-2 average pools
        timm = model(x)
        assert model.set_padding("symmetric") and torch.equal(model(x), symmetric)
    # 4 reduction cells × (4 stride-2 separable stacks + 3 stride-2 pools)
    assert len(notes) == 4 * 7 and model.padding == "symmetric"
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert (same - symmetric).abs().max() > 1e-6 and (timm - same).abs().max() > 1e-6
    built = create_model("nasnet_a_large", **SMALL, stem_filters=8, padding="same").double().eval()
    built.load_state_dict(weights)
    with torch.no_grad():
        torch.testing.assert_close(built(x), same, rtol=0, atol=0)
    with pytest.raises(
        ValueError, match=r"nasnet_a_large: padding must be one of 'symmetric', 'same', 'timm', got 'x'"
    ):
        model.set_padding("x")
    with pytest.raises(ValueError, match=r"padding 'same' needs the default depthwise convs, not op='asym'"):
        create_model("nasnet_a_mobile", op="asym", padding="same", **SMALL)
    replaced = create_model("nasnet_a_mobile", op="asym", **SMALL)
    before = repr(replaced)
    with pytest.raises(ValueError, match=r"padding 'timm' needs the default depthwise conv at stages.0.0.c0_left"):
        replaced.set_padding("timm")
    assert repr(replaced) == before and replaced.padding == "symmetric"  # refused before changing anything


def _timm():
    try:
        import timm
    except ImportError as error:
        pytest.skip(f"timm is not importable: {error}")
    return timm


_CELL_PARTS = [
    (r"^conv_1x1\.conv", "conv_cur.1"),
    (r"^conv_1x1\.bn", "conv_cur.2"),
    (r"^conv_prev_1x1\.conv", "adapt_prev.1"),
    (r"^conv_prev_1x1\.bn", "adapt_prev.2"),
    (r"^path_1\.conv", "adapt_prev.path_1"),
    (r"^path_2\.conv", "adapt_prev.path_2"),
    (r"^final_path_bn", "adapt_prev.bn"),
    (r"^comb_iter_(\d)_(left|right)\.separable_1\.depthwise_conv2d", r"c\1_\2.body.1"),
    (r"^comb_iter_(\d)_(left|right)\.separable_1\.pointwise_conv2d", r"c\1_\2.body.2"),
    (r"^comb_iter_(\d)_(left|right)\.bn_sep_1", r"c\1_\2.body.3"),
    (r"^comb_iter_(\d)_(left|right)\.separable_2\.depthwise_conv2d", r"c\1_\2.body.5"),
    (r"^comb_iter_(\d)_(left|right)\.separable_2\.pointwise_conv2d", r"c\1_\2.body.6"),
    (r"^comb_iter_(\d)_(left|right)\.bn_sep_2", r"c\1_\2.body.7"),
]
_CELLS = {"cell_stem_0": "stages.0.0", "cell_stem_1": "stages.1.0", "reduction_cell_0": "stages.2.0"}
_CELLS["reduction_cell_1"] = "stages.3.0"


def _our_name(name: str) -> str:
    """timm nasnetalarge state-dict key → convzoo's (cell_i is the (i mod 6 + 1)-th cell of stage 1 + i // 6)."""
    if name.startswith("conv0."):
        return name.replace("conv0.conv", "stem.0").replace("conv0.bn", "stem.1")
    if name.startswith("last_linear."):
        return name.replace("last_linear", "head.fc")
    cell, rest = name.split(".", 1)
    number = re.fullmatch(r"cell_(\d+)", cell)
    prefix = f"stages.{1 + int(number[1]) // 6}.{int(number[1]) % 6 + 1}" if number else _CELLS[cell]
    for pattern, replacement in _CELL_PARTS:
        mapped = re.sub(pattern, replacement, rest)
        if mapped != rest:
            return f"{prefix}.{mapped}"
    raise KeyError(name)


@pytest.mark.peer
def test_large_config_has_timm_nasnetalarge_count():
    timm = _timm()
    with torch.device("meta"):
        peer = timm.create_model("nasnetalarge")
    assert meta_param_count("nasnet_a_large") == sum(p.numel() for p in peer.parameters()) == 88_753_150


@pytest.mark.peer
def test_equals_timm_nasnet_a_after_mapping_the_weights():
    _timm()
    from timm.models.nasnet import NASNetALarge

    torch.manual_seed(0)
    # timm's NASNetALarge class at a small width (F = 384 / 24 = 16, 16 stem filters): the 6 @ 4032 layout
    peer = NASNetALarge(num_classes=10, stem_size=16, num_features=384).double().eval()
    # padding="timm": timm's port pads its stride-2 convs and pools as TensorFlow's SAME, and its stride-2 average
    # pools pad with zeros before pooling, so they count the padding (TensorFlow's exclude it)
    model = create_model("nasnet_a_large", num_classes=10, filters=16, stem_filters=16, padding="timm")
    model = model.double().eval()
    for m in peer.modules():
        if isinstance(m, nn.BatchNorm2d):  # random statistics and affine so that every BN matters
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    model.load_state_dict({_our_name(k): v for k, v in peer.state_dict().items()})
    symmetric = create_model("nasnet_a_large", num_classes=10, filters=16, stem_filters=16).double().eval()
    symmetric.load_state_dict(model.state_dict())
    # 64 → 31 → 16 → 8 → 4 → 2: even sides at stride 2; 67 → 33 → 17 → 9 → 5 → 3: odd, where SAME is symmetric
    for side in (64, 67):
        x = torch.randn(2, 3, side, side, dtype=torch.float64)
        with torch.no_grad():
            want = peer(x)
            torch.testing.assert_close(model(x), want, rtol=0, atol=1e-12)
            assert (symmetric(x) - want).abs().max() > 1e-6
