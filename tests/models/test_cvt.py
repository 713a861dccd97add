"""CvT (S114): the convolutional projection attention against a slow loop reference, the CvT-13 layout, op=."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from convzoo.models import create_model
from convzoo.models.cvt import ConvProjectionAttention
from convzoo.testing import randomize_batchnorm_


def _depthwise_ref(x, weight, stride):
    """3×3 depthwise cross-correlation with zero padding 1, by loops: (C, H, W) → (C, ⌈H/s⌉, ⌈W/s⌉)."""
    c, h, w = x.shape
    k = weight.shape[-1]
    padded = torch.zeros(c, h + k - 1, w + k - 1, dtype=x.dtype)
    padded[:, k // 2 : k // 2 + h, k // 2 : k // 2 + w] = x
    out = torch.zeros(c, math.ceil(h / stride), math.ceil(w / stride), dtype=x.dtype)
    for ch in range(c):
        for i in range(out.shape[1]):
            for j in range(out.shape[2]):
                window = padded[ch, i * stride : i * stride + k, j * stride : j * stride + k]
                out[ch, i, j] = (window * weight[ch, 0]).sum()
    return out


def _reference(attn: ConvProjectionAttention, x, size, num_cls):
    """The paper's §3.2 for one sample at a time: conv projection, BN (eval), linear, per-head softmax attention."""
    h, w = size
    outputs = []
    for sample in x:
        cls, patches = sample[:num_cls], sample[num_cls:]
        grid = patches.T.reshape(-1, h, w)  # (C, H, W)

        def project(seq, linear, stride, grid=grid, cls=cls):
            conv, bn = seq[0], seq[1]
            y = _depthwise_ref(grid, conv.weight, stride)
            y = (y - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + bn.eps)
            y = y * bn.weight[:, None, None] + bn.bias[:, None, None]
            t = torch.cat([cls, y.flatten(1).T])  # (T + h'w', C)
            return t @ linear.weight.T + linear.bias

        q = project(attn.conv_q, attn.proj_q, 1)
        k = project(attn.conv_k, attn.proj_k, 2)
        v = project(attn.conv_v, attn.proj_v, 2)
        d = attn.dim // attn.heads
        heads = []
        for head in range(attn.heads):
            sl = slice(head * d, (head + 1) * d)
            rows = []
            for query in q[:, sl]:
                logits = torch.stack([query @ key for key in k[:, sl]]) / math.sqrt(attn.dim)
                weights = torch.exp(logits - logits.max())
                weights = weights / weights.sum()
                rows.append((weights[:, None] * v[:, sl]).sum(0))
            heads.append(torch.stack(rows))
        y = torch.cat(heads, 1)  # (L, C)
        outputs.append(y @ attn.proj.weight.T + attn.proj.bias)
    return torch.stack(outputs)


@pytest.mark.parametrize("num_cls", [0, 1])
def test_conv_projection_attention_equals_the_loop_reference(num_cls):
    torch.manual_seed(0)
    attn = ConvProjectionAttention(6, 2, kernel_size=3, kv_stride=2, qkv_bias=True, op=None, position="a")
    for linear in (attn.proj_q, attn.proj_k, attn.proj_v, attn.proj):
        nn.init.normal_(linear.bias)
    attn = randomize_batchnorm_(attn).double().eval()
    size = (3, 5)  # not square, odd: keys and values on a 2×3 map
    x = torch.randn(2, num_cls + 15, 6, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(attn(x, size, num_cls), _reference(attn, x, size, num_cls), rtol=0, atol=1e-12)


def test_cvt13_layout():
    with torch.device("meta"):
        model = create_model("cvt_13")
        maps = model.forward_stages(torch.empty(2, 3, 224, 224))
        cls = model.forward_features(torch.empty(2, 3, 224, 224))
    assert [tuple(m.shape[1:]) for m in maps] == [(64, 56, 56), (192, 28, 28), (384, 14, 14)]
    assert cls.shape == (2, 384)
    assert [len(s.blocks) for s in model.stages] == [1, 2, 10]
    assert [s.blocks[0].attn.heads for s in model.stages] == [1, 3, 6]
    assert [s.cls_token is not None for s in model.stages] == [False, False, True]
    assert [s.embed.kernel_size for s in model.stages] == [(7, 7), (3, 3), (3, 3)]
    rates = [b.drop_path.p for s in model.stages for b in s.blocks]
    assert rates[:3] == [0.0] * 3 and rates[3:] == pytest.approx([0.1 * i / 9 for i in range(10)])


def test_op_replaces_the_three_projection_convs_of_every_block():
    with torch.device("meta"):
        model = create_model("cvt_13", op="asym")
    replaced = [m for m in model.modules() if type(m).__module__ == "convzoo.ops.factorized"]
    assert len(replaced) == 3 * 13
    assert [m.stride for m in replaced[:3]] == [(1, 1), (2, 2), (2, 2)]
    small = create_model("cvt_13", op="asym", num_classes=3, depths=(1, 1, 1))
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 3)


def test_bad_config_raises():
    with pytest.raises(ValueError, match=r"cvt_13: cvt: dims, depths, heads and the patch settings must be of one"):
        create_model("cvt_13", depths=(1, 2))
    with pytest.raises(ValueError, match=r"cvt_13: cvt: heads must divide the width 64, got 3"):
        create_model("cvt_13", heads=(3, 3, 6))
