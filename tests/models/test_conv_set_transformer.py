"""Convolutional Set Transformer (S70): permutation equivariance, SetConv2D against a per-image loop, set context."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.conv_set_transformer import SetConv2d
from convzoo.models.counting import count_params

SMALL = {"depths": (1, 1, 1, 1, 1), "widths": (8, 8, 16, 16, 16), "head_dim": 8}


def _model(**cfg):
    torch.manual_seed(0)
    return create_model("cst15", num_classes=6, **{**SMALL, **cfg}).double().eval()


def test_permuting_the_set_permutes_every_output():
    model = _model()
    x = torch.randn(2, 5, 3, 32, 32, dtype=torch.float64)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        out, out_perm = model(x), model(x[:, perm])
        stages, stages_perm = model.forward_stages(x), model.forward_stages(x[:, perm])
    assert out.shape == (2, 5, 6)
    torch.testing.assert_close(out_perm, out[:, perm])
    for a, b in zip(stages, stages_perm, strict=True):
        torch.testing.assert_close(b, a[:, perm])


def test_images_see_their_own_set_only():
    model = _model()
    x = torch.randn(2, 3, 3, 32, 32, dtype=torch.float64)
    y = x.clone()
    y[0, 2] = torch.randn(3, 32, 32, dtype=torch.float64)  # change one image of set 0
    with torch.no_grad():
        a, b = model(x), model(y)
    assert (a[0, :2] - b[0, :2]).abs().max() > 1e-6  # the other images of that set change (set context)
    torch.testing.assert_close(a[1], b[1])  # set 1 does not
    flat = create_model("cst15", num_classes=6, set_size=3, **SMALL).double().eval()
    flat.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(flat(x.flatten(0, 1)), a.flatten(0, 1))  # (B, ...) split into sets of 3


def test_setconv_equals_conv_plus_attention_bias_per_image():
    torch.manual_seed(0)
    layer = SetConv2d(torch.nn.Conv2d(3, 8, 3, padding=1), 8, 4, torch.nn.ReLU6()).double()
    x = torch.randn(2, 3, 3, 5, 5, dtype=torch.float64)
    att = layer.mhsa
    for n in range(2):
        maps = [layer.conv(x[n, i : i + 1])[0] for i in range(3)]  # each (8, 5, 5)
        g = torch.stack([m.mean((1, 2)) for m in maps])  # (3, 8) descriptors
        q, k, v = (g @ w.T + b for w, b in zip(att.qkv.weight.split(8), att.qkv.bias.split(8), strict=True))
        heads = []
        for h in range(2):
            s = slice(4 * h, 4 * h + 4)
            heads.append(torch.softmax(q[:, s] @ k[:, s].T / math.sqrt(4), dim=-1) @ v[:, s])
        bias = att.proj(torch.cat(heads, dim=1))  # (3, 8)
        for i in range(3):
            expected = F.relu6(maps[i] + bias[i][:, None, None])
            torch.testing.assert_close(layer(x)[n, i], expected)


def test_cst15_layout_and_backbone_count():
    with torch.device("meta"):
        model = create_model("cst15", num_classes=0)
    assert count_params(model) == 27_775_552  # the official notebook's backbone count
    assert [sum(isinstance(m, SetConv2d) for m in s) for s in model.stages] == [0, 0, 2, 4, 4]
    assert model.stages[3][0].mhsa.num_heads == 8 and model.stages[2][0].mhsa.head_dim == 64


def test_errors():
    model = create_model("cst15", set_size=3, **SMALL)
    with pytest.raises(ValueError, match=r"cst: a batch of 4 images does not split into sets of set_size 3"):
        model(torch.randn(4, 3, 32, 32))
    with pytest.raises(ValueError, match=r"cst: expected \(N, S, C, H, W\) sets or \(B, C, H, W\) images"):
        model(torch.randn(3, 32, 32))
