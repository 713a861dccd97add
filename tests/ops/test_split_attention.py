"""ResNeSt Split-Attention conv (S110): slow per-split reference, r-softmax, published widths, contract, errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo import OPS, create_op
from convzoo.ops.split_attention import radix_softmax
from convzoo.testing import check_op_contract, make_contract_op

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def _batch_norm(u: torch.Tensor, bn: torch.nn.Module, training: bool) -> torch.Tensor:
    """(u − mean) / sqrt(var + eps) · γ + β per channel; batch statistics (biased var) when training."""
    shape = (1, -1, *[1] * (u.dim() - 2))
    if training:
        dims = [0, *range(2, u.dim())]
        mean = u.mean(dim=dims)
        var = ((u - mean.view(shape)) ** 2).mean(dim=dims)
    else:
        mean, var = bn.running_mean, bn.running_var
    return (u - mean.view(shape)) / torch.sqrt(var.view(shape) + bn.eps) * bn.weight.view(shape) + bn.bias.view(shape)


def _reference(op, x: torch.Tensor) -> torch.Tensor:
    """Split-Attention the slow way: one conv per (radix r, cardinal group g), loops over groups and splits."""
    radix, card, c_out, c_in = op.radix, op.cardinality, op.out_channels, op.in_channels
    dim = x.dim() - 2
    in_per_conv, out_per_group = c_in // (card * radix), c_out // card
    inter_per_group = op.inter_channels // card
    conv = _CONV[dim]
    padding = [k // 2 for k in op.kernel_size]

    # the conv's group j = r·G + g reads input block j and writes channels [j·C_out/G, (j+1)·C_out/G)
    splits = []
    for r in range(radix):
        pieces = []
        for g in range(card):
            j = r * card + g
            rows = slice(j * out_per_group, (j + 1) * out_per_group)
            xs = x[:, j * in_per_conv : (j + 1) * in_per_conv]
            bias = None if op.bias is None else op.bias[rows]
            pieces.append(conv(xs, op.weight[rows], bias, stride=op.stride, padding=padding))
        splits.append(torch.cat(pieces, dim=1))
    u = _batch_norm(torch.cat(splits, dim=1), op.bn0, op.training).relu()  # (N, R·C_out, *S')
    splits = [u[:, r * c_out : (r + 1) * c_out] for r in range(radix)]

    gap = sum(splits).flatten(2).mean(-1)  # (N, C_out)
    n = x.shape[0]
    w1, b1 = op.fc1_weight.flatten(1), op.fc1_bias  # (I, C_out/G)
    w2, b2 = op.fc2_weight.flatten(1), op.fc2_bias  # (C_out·R, I/G)
    hidden = torch.zeros(n, op.inter_channels, dtype=x.dtype)
    for g in range(card):
        for i in range(inter_per_group):
            row = g * inter_per_group + i
            hidden[:, row] = gap[:, g * out_per_group : (g + 1) * out_per_group] @ w1[row] + b1[row]
    hidden = _batch_norm(hidden, op.bn1, op.training).relu()

    out = torch.zeros_like(splits[0])
    for b in range(n):
        for g in range(card):
            h = hidden[b, g * inter_per_group : (g + 1) * inter_per_group]
            for c in range(out_per_group):
                # fc2 row g·(R·C_out/G) + r·(C_out/G) + c is split r's logit for channel g·C_out/G + c
                logits = [h @ w2[g * radix * out_per_group + r * out_per_group + c] for r in range(radix)]
                logits = [v + b2[g * radix * out_per_group + r * out_per_group + c] for r, v in enumerate(logits)]
                if radix == 1:
                    weights = [1.0 / (1.0 + math.exp(-logits[0].item()))]
                else:
                    exps = [math.exp(v.item()) for v in logits]
                    weights = [e / sum(exps) for e in exps]
                channel = g * out_per_group + c
                out[b, channel] = sum(w * splits[r][b, channel] for r, w in enumerate(weights))
    return out


def _randomise_batch_norms(op):
    with torch.no_grad():
        for bn in (op.bn0, op.bn1):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_()
            bn.running_mean.normal_(0, 0.3)
            bn.running_var.uniform_(0.5, 2.0)


CASES = [
    # (dim, C_in, C_out, kernel, stride, options)
    (2, 8, 8, 3, 1, {}),
    (2, 8, 12, 3, 2, {"cardinality": 2, "min_inter_channels": 4}),
    (1, 12, 6, 5, 2, {"radix": 3, "cardinality": 2, "reduction_factor": 2, "min_inter_channels": 4}),
    (3, 6, 4, 3, 1, {"radix": 1, "cardinality": 2}),
    (2, 4, 6, 1, 1, {"radix": 4, "min_inter_channels": 8}),
]


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(("dim", "c_in", "c_out", "kernel", "stride", "options"), CASES)
def test_matches_slow_reference(dim, c_in, c_out, kernel, stride, options, training):
    torch.manual_seed(c_in + c_out)
    op = create_op("split_attention", c_in, c_out, kernel, stride, dim=dim, **options).double()
    _randomise_batch_norms(op)
    op.train(training)
    x = torch.randn(2, c_in, *(5, 6, 3)[:dim], dtype=torch.float64)
    expected = _reference(op, x)
    torch.testing.assert_close(op(x), expected, rtol=1e-10, atol=1e-10)


def test_radix_softmax_sums_to_one_over_radix():
    torch.manual_seed(0)
    radix, card, channels = 3, 2, 8
    logits = torch.randn(4, channels * radix, dtype=torch.float64) * 3
    weights = radix_softmax(logits, radix, card)
    assert weights.shape == (4, radix, channels)
    assert (weights > 0).all()
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(4, channels, dtype=torch.float64))
    # cardinal group 1, channel 2 of that group: its logits sit at g·R·(C/G) + r·(C/G) + c
    per_group = channels // card
    picked = torch.stack([logits[:, 1 * radix * per_group + r * per_group + 2] for r in range(radix)], dim=1)
    torch.testing.assert_close(weights[:, :, per_group + 2], picked.softmax(dim=1))


def test_radix_one_is_a_sigmoid_gate():
    logits = torch.randn(2, 6)
    torch.testing.assert_close(radix_softmax(logits, 1, 2), logits.sigmoid().unsqueeze(1))


def test_resnest50_first_stage_parameter_count():
    # ResNeSt-50 layer1 conv2: SplAtConv2d(64, 64, 3, groups=1, radix=2, bias=False) with BN
    op = create_op("split_attention", 64, 64, 3, bias=False)
    inter = max(64 * 2 // 4, 32)  # 32
    conv = (64 * 2) * (64 // 2) * 3 * 3  # 128 filters over 32 input channels each: 36864
    bn0 = 2 * 64 * 2  # 256
    fc1 = inter * 64 + inter  # 2080
    bn1 = 2 * inter  # 64
    fc2 = 64 * 2 * inter + 64 * 2  # 4224
    assert op.inter_channels == inter
    assert sum(p.numel() for p in op.parameters()) == conv + bn0 + fc1 + bn1 + fc2 == 43488
    assert tuple(op.weight.shape) == (128, 32, 3, 3)
    # with the contract's default bias the conv gains 128 biases
    assert sum(p.numel() for p in create_op("split_attention", 64, 64).parameters()) == 43488 + 128


@pytest.mark.parametrize(("width", "inter"), [(64, 32), (128, 64), (256, 128), (512, 256)])
def test_official_attention_width(width, inter):
    # ResNeSt-50's group widths per stage; inter = max(C_in·radix // 4, 32)
    assert create_op("split_attention", width, width).inter_channels == inter


def test_registry_metadata():
    entry = OPS.get("split_attention")
    assert entry.kind == "grid"
    assert entry.dims == (1, 2, 3)
    assert entry.dynamic and not entry.linear
    assert entry.papers == ("resnest",)


@pytest.mark.parametrize("dim", [1, 2, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [7, 8, 1])
def test_contract(dim, stride, size):
    op = make_contract_op("split_attention", dim=dim, stride=stride)
    fresh = make_contract_op("split_attention", dim=dim, stride=stride, seed=1)
    check_op_contract(op, (size,) * dim, fresh=fresh)


def test_bad_inputs():
    # the messages name the op, the value given and what was expected
    with pytest.raises(ValueError, match=r"^split_attention: in_channels \(6\) must be divisible by cardinality·radix"):
        create_op("split_attention", 6, 8, cardinality=2, radix=2)
    with pytest.raises(
        ValueError, match=r"^split_attention: out_channels \(9\) must be divisible by cardinality \(2\)"
    ):
        create_op("split_attention", 8, 9, cardinality=2)
    with pytest.raises(ValueError, match=r"^split_attention: radix must be a positive int, got 0"):
        create_op("split_attention", 8, 8, radix=0)
    with pytest.raises(ValueError, match=r"^split_attention: cardinality must be a positive int, got -1"):
        create_op("split_attention", 8, 8, cardinality=-1)
    with pytest.raises(ValueError, match=r"^split_attention: reduction_factor must be a positive int, got 0"):
        create_op("split_attention", 8, 8, reduction_factor=0)
    with pytest.raises(
        ValueError, match=r"^split_attention: the attention width .* = 32 must be divisible by cardinality \(3\)"
    ):
        create_op("split_attention", 6, 6, radix=1, cardinality=3)
    with pytest.raises(ValueError, match=r"^split_attention: kernel_size must be odd"):
        create_op("split_attention", 8, 8, kernel_size=4)
    op = create_op("split_attention", 8, 8)
    with pytest.raises(ValueError, match=r"^split_attention: expected 8 input channels, got 4"):
        op(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match=r"^split_attention: training mode .* needs a batch of at least 2"):
        op.train()(torch.randn(1, 8, 5, 5))
    assert op.eval()(torch.randn(1, 8, 5, 5)).shape == (1, 8, 5, 5)
