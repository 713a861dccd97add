"""MetaFormer baselines (S18): the token mixer of each variant, frozen random matrices, norms, heads and op=."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.layers.activations import StarReLU
from convzoo.models import create_model
from convzoo.models.counting import count_params
from convzoo.models.metaformer import _Attention, _Norm, _Pooling, _RandomMixing, _SepConv
from convzoo.ops.base import Op

SMALL = {"depths": (1, 1, 1, 1)}


def _mixers(model, stage):
    return [block.token_mixer for block in model.stages[stage].blocks]


def _meta(name, **cfg):
    """The full-size model on the meta device: its structure and shapes without the cost of initialising it."""
    with torch.device("meta"):
        return create_model(name, **cfg)


def test_randformer_matrices_are_frozen_buffers_of_the_paper_size():
    model = _meta("randformer_s12")
    buffers = {n: b for n, b in model.named_buffers() if n.endswith("random_matrix")}
    assert not [n for n, _ in model.named_parameters() if "random" in n]
    # 224 input: stage 3 is 224/16 = 14 → 196 tokens (6 blocks), stage 4 is 7×7 = 49 tokens (2 blocks)
    assert sorted(b.shape[0] for b in buffers.values()) == [49] * 2 + [196] * 6
    assert sum(b.numel() for b in buffers.values()) == 6 * 196**2 + 2 * 49**2 == 235_298
    assert set(buffers) <= set(model.state_dict())  # saved with the model
    assert all(isinstance(m, nn.Identity) for stage in (0, 1) for m in _mixers(model, stage))
    small = create_model("randformer_s12", image_size=64, depths=(1, 1, 1, 1))
    for matrix in (b for n, b in small.named_buffers() if n.endswith("random_matrix")):
        assert (matrix > 0).all()  # softmax rows of uniform draws
        torch.testing.assert_close(matrix.sum(dim=-1), torch.ones(matrix.shape[0]))


def test_random_mixing_is_a_matrix_product_over_tokens():
    torch.manual_seed(0)
    mixer = _RandomMixing(6)
    x = torch.randn(2, 2, 3, 5)  # (N, H, W, C)
    expected = torch.stack([mixer.random_matrix @ sample.reshape(6, 5) for sample in x]).reshape(2, 2, 3, 5)
    torch.testing.assert_close(mixer(x), expected)
    with pytest.raises(ValueError, match="random mixer was drawn for 6 tokens, got a 3×3 map"):
        mixer(torch.randn(1, 3, 3, 5))


def test_randformer_rejects_another_input_size():
    model = create_model("randformer_s12", image_size=32, depths=(1, 1, 1, 1))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1000)
    with pytest.raises(ValueError, match="random mixer"):
        model(torch.randn(2, 3, 64, 64))


def test_pooling_is_average_of_the_valid_window_minus_input():
    x = torch.arange(9.0).reshape(1, 3, 3, 1)  # (N, H, W, C): rows 0 1 2 / 3 4 5 / 6 7 8
    y = _Pooling(3)(x)
    assert y[0, 0, 0, 0] == (0 + 1 + 3 + 4) / 4 - 0  # corner: the 4 pixels inside the image, no padded zeros
    assert y[0, 0, 1, 0] == (0 + 1 + 2 + 3 + 4 + 5) / 6 - 1
    assert y[0, 1, 1, 0] == 36 / 9 - 4


def test_norms_are_bias_free_over_channels_or_over_tokens():
    torch.manual_seed(0)
    x = 3 * torch.randn(2, 4, 5, 6) + 1  # (N, H, W, C)
    per_pixel = _Norm(6)(x)
    torch.testing.assert_close(per_pixel.mean(-1), torch.zeros(2, 4, 5), atol=1e-5, rtol=0)
    over_tokens = _Norm(6, over_tokens=True)(x)
    torch.testing.assert_close(over_tokens.mean((1, 2, 3)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(over_tokens.var((1, 2, 3), unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert [n for n, _ in _Norm(6).named_parameters()] == ["weight"]


def test_mixers_of_each_variant():
    pool = create_model("poolformerv2_s12", **SMALL)
    assert all(isinstance(m, _Pooling) for s in range(4) for m in _mixers(pool, s))
    assert all(isinstance(m, nn.Identity) for s in range(4) for m in _mixers(_meta("identityformer_s12"), s))
    conv = _meta("convformer_s18")
    assert all(isinstance(m, _SepConv) for s in range(4) for m in _mixers(conv, s))
    ca = _meta("caformer_s18")
    assert [len(_mixers(ca, s)) for s in range(4)] == [3, 3, 9, 3]
    sep = _mixers(ca, 0)[0]
    assert isinstance(sep, _SepConv) and isinstance(sep.act1, StarReLU)
    dw = sep.dwconv  # expansion 2: 64 → 128 channels, 7×7 depthwise, no bias
    assert (dw.in_channels, dw.kernel_size, dw.groups, dw.bias) == (128, (7, 7), 128, None)
    assert isinstance(_mixers(ca, 1)[0], _SepConv)
    heads = [_mixers(ca, s)[0].num_heads for s in (2, 3)]
    assert all(isinstance(m, _Attention) for s in (2, 3) for m in _mixers(ca, s))
    assert heads == [320 // 32, 512 // 32]


def test_attention_matches_an_explicit_softmax():
    torch.manual_seed(0)
    attention = _Attention(8, head_dim=4)
    x = torch.randn(1, 2, 3, 8)  # (N, H, W, C): 6 tokens, 2 heads
    q, k, v = attention.qkv(x.reshape(6, 8)).split(8, dim=-1)  # (6, 8) each
    heads = []
    for h in range(2):
        cols = slice(4 * h, 4 * h + 4)
        weights = torch.softmax(q[:, cols] @ k[:, cols].T / 2.0, dim=-1)  # 1/√4
        heads.append(weights @ v[:, cols])
    expected = attention.proj(torch.cat(heads, dim=-1)).reshape(1, 2, 3, 8)
    torch.testing.assert_close(attention(x), expected)


def test_res_scale_in_stages_3_and_4_only_and_starrelu_mlps():
    model = _meta("convformer_s18")
    for s, stage in enumerate(model.stages):
        for block in stage.blocks:
            assert isinstance(block.res_scale1, nn.Identity) == (s < 2)
            assert isinstance(block.res_scale2, nn.Identity) == (s < 2)
            assert isinstance(block.mlp[1], StarReLU)
            assert block.mlp[0].bias is None and block.mlp[0].out_features == 4 * block.mlp[0].in_features
    assert not [n for n, _ in model.named_parameters() if "layer_scale" in n]


def test_heads():
    mlp_head = create_model("caformer_s18", **SMALL).head
    assert mlp_head.hidden[0].in_features == 512 and mlp_head.hidden[0].out_features == 2048
    assert isinstance(mlp_head.hidden[2], nn.LayerNorm) and mlp_head.fc.in_features == 2048
    x = torch.randn(3, 512)
    torch.testing.assert_close(mlp_head.hidden[1](x), torch.relu(x) ** 2)  # SquaredReLU
    linear_head = _meta("poolformerv2_s12").head
    assert linear_head.hidden is None and linear_head.fc.in_features == 512
    assert isinstance(linear_head.norm, nn.LayerNorm) and linear_head.norm.eps == 1e-6


def test_downsampling_stem_and_strides():
    model = _meta("identityformer_s12")
    stem = model.stem.conv
    assert (stem.kernel_size, stem.stride, stem.padding) == ((7, 7), (4, 4), (2, 2))
    for s in (1, 2, 3):
        conv = model.stages[s].downsample.conv
        assert (conv.kernel_size, conv.stride, conv.padding) == ((3, 3), (2, 2), (1, 1))
    assert [f.reduction for f in model.feature_info] == [4, 8, 16, 32]


def test_op_replaces_the_depthwise_conv_of_sepconv():
    model = create_model("caformer_s18", op="shift", **SMALL)
    assert all(isinstance(m.dwconv, Op) for s in (0, 1) for m in _mixers(model, s))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1000)
    same = create_model("convformer_s18", op="conv", **SMALL)
    assert count_params(same) == count_params(create_model("convformer_s18", **SMALL))  # still depthwise


@pytest.mark.parametrize("name", ["identityformer_s12", "randformer_s12", "poolformerv2_s12"])
def test_parameter_free_mixers_take_no_op(name):
    with pytest.raises(ValueError, match=f"{name}: takes no op="):
        create_model(name, op="shift")
