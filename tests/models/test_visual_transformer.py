"""Visual Transformers (S11): tokenizers and projector against loop references, token shapes, layout, training."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo.models import create_model
from convzoo.models.visual_transformer import (
    FilterTokenizer,
    Projector,
    RecurrentTokenizer,
    VTModule,
    VTResNetConfig,
    vt_stage_params,
)
from tests.models._deploys import check_onnx_export, check_profile_and_optimize, check_steps_lower_the_loss


def _softmax(values):
    e = [math.exp(v - max(values)) for v in values]
    return [v / sum(e) for v in e]


def _grouped_1x1(x, weight, groups):
    """Grouped 1×1 conv of one sample by loops: x (C_in, P), weight (C_out, C_in/groups, 1, 1) → (C_out, P)."""
    c_out, per_group = weight.shape[:2]
    out_per_group = c_out // groups
    out = torch.zeros(c_out, x.shape[1], dtype=x.dtype)
    for o in range(c_out):
        g = o // out_per_group
        for i in range(per_group):
            out[o] += weight[o, i, 0, 0] * x[g * per_group + i]
    return out


def _pool_reference(weights_per_head, value, heads):
    """Tokens (L, C_T): token l, channel j pools the values of channel j with its head's weights over positions."""
    ct, positions = value.shape
    d = ct // heads
    length = len(weights_per_head[0])
    tokens = torch.zeros(length, ct, dtype=value.dtype)
    for l_ in range(length):
        for j in range(ct):
            a = weights_per_head[j // d][l_]
            tokens[l_, j] = sum(a[p] * value[j, p] for p in range(positions))
    return tokens


def test_filter_tokenizer_is_spatial_attention_pooling():
    torch.manual_seed(0)
    tok = FilterTokenizer(8, 12, 3, groups=2).double()
    x = torch.randn(2, 8, 3, 4, dtype=torch.float64)
    with torch.no_grad():
        got = tok(x)
        assert got.shape == (2, 3, 12)  # (N, L, C_T)
        for n in range(2):
            flat = x[n].flatten(1)  # (C, P)
            logits = tok.coef.weight[:, :, 0, 0] @ flat / math.sqrt(8)  # (L, P)
            weights = [_softmax(row.tolist()) for row in logits]
            value = _grouped_1x1(flat, tok.value.weight, 2)
            torch.testing.assert_close(got[n], _pool_reference([weights], value, 1), rtol=0, atol=1e-12)


def test_recurrent_tokenizer_equals_the_per_head_loop_reference():
    torch.manual_seed(1)
    heads, c, ct, length = 2, 8, 6, 4
    tok = RecurrentTokenizer(c, ct, length, groups=2, heads=heads).double()
    x = torch.randn(2, c, 3, 3, dtype=torch.float64)
    previous = torch.randn(2, length, ct, dtype=torch.float64)
    with torch.no_grad():
        got = tok(x, previous)
        assert got.shape == (2, length, ct)
        d = c // heads
        for n in range(2):
            flat = x[n].flatten(1)
            key = _grouped_1x1(flat, tok.key.weight, 2)  # (C, P)
            query = previous[n] @ tok.query.weight.T  # (L, C): W_R = T_in W_{T→R}
            per_head = []
            for h in range(heads):
                rows = []
                for l_ in range(length):
                    logits = [
                        (query[l_, h * d : (h + 1) * d] @ key[h * d : (h + 1) * d, p]).item() / math.sqrt(d)
                        for p in range(flat.shape[1])
                    ]
                    rows.append(_softmax(logits))
                per_head.append(rows)
            value = _grouped_1x1(flat, tok.value.weight, 2)
            torch.testing.assert_close(got[n], _pool_reference(per_head, value, heads), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="needs the previous module's tokens"):
        tok(x)


def test_projector_equals_the_loop_reference():
    torch.manual_seed(2)
    heads, c, ct, length = 2, 4, 6, 3
    proj = Projector(c, ct, groups=2, heads=heads).double()
    x = torch.randn(1, c, 2, 3, dtype=torch.float64)
    tokens = torch.randn(1, length, ct, dtype=torch.float64)
    with torch.no_grad():
        got = proj(x, tokens)
        assert got.shape == x.shape  # (N, C, H, W)
        flat = x[0].flatten(1)
        q = _grouped_1x1(flat, proj.query.weight, 2)  # (C, P)
        k, v = tokens[0] @ proj.key.weight.T, tokens[0] @ proj.value.weight.T  # (L, C)
        d = c // heads
        want = torch.zeros(c, flat.shape[1], dtype=torch.float64)
        for p in range(flat.shape[1]):
            for h in range(heads):
                sl = slice(h * d, (h + 1) * d)
                a = _softmax([(q[sl, p] @ k[l_, sl]).item() / math.sqrt(d) for l_ in range(length)])
                want[sl, p] = sum(a[l_] * v[l_, sl] for l_ in range(length))
        torch.testing.assert_close(got[0], want.reshape(c, 2, 3), rtol=0, atol=1e-12)


def test_vt_module_shapes_and_token_hand_over():
    cfg = VTResNetConfig(channels=16, tokens=5, token_channels=8, heads=2, groups=2, modules=2)
    first, second = VTModule(cfg, recurrent=False), VTModule(cfg, recurrent=True)
    x = torch.randn(2, 16, 3, 5)
    y, tokens = first(x)
    assert y.shape == x.shape and tokens.shape == (2, 5, 8)
    z, tokens = second(y, tokens)
    assert z.shape == x.shape and tokens.shape == (2, 5, 8)


def test_vt_resnet18_layout_and_closed_form_count():
    with torch.device("meta"):
        model = create_model("vt_resnet18")
        maps = model.forward_stages(torch.empty(1, 3, 224, 224))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (256, 14, 14)]
    vt = model.stages[-1].vt
    assert [type(m.tokenizer).__name__ for m in vt] == ["FilterTokenizer", "RecurrentTokenizer"]
    assert vt[0].tokenizer.coef.out_channels == 16  # L = 16 visual tokens
    counted = sum(p.numel() for p in model.stages[-1].parameters()) + sum(p.numel() for p in model.head.parameters())
    assert counted == vt_stage_params(VTResNetConfig(), 256)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = create_model(
        "vt_resnet18", num_classes=4, layers=(1, 1, 1, 2), channels=32, token_channels=32, heads=4, groups=4
    )
    check_steps_lower_the_loss(model, 6, torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]))


def test_op_replaces_the_resnet_convs():
    model = create_model(
        "vt_resnet18", op="asym", num_classes=3, layers=(1, 1, 1, 2), channels=32, token_channels=32, heads=4, groups=4
    )
    assert any(type(m).__module__ == "convzoo.ops.factorized" for m in model.modules())
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"vt_resnet18: visual_transformer: heads 16 and groups 16 must divide"):
        create_model("vt_resnet18", token_channels=100)
    with pytest.raises(ValueError, match=r"vt_resnet18: visual_transformer: layers must name four ResNet stages"):
        create_model("vt_resnet18", layers=(2, 2, 2))


def _small_eval():
    torch.manual_seed(0)
    return create_model(
        "vt_resnet18", num_classes=5, layers=(1, 1, 1, 2), channels=32, token_channels=32, heads=4, groups=4
    ).eval(), torch.randn(2, 3, 32, 32)


def test_profile_and_optimize():
    check_profile_and_optimize(*_small_eval())


@pytest.mark.slow
@pytest.mark.peer
def test_export_onnx_matches(tmp_path):
    check_onnx_export(*_small_eval(), tmp_path / "model.onnx")
