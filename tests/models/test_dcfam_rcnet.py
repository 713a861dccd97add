"""DCFAM (S51) and the RCNet neck (S99): linear attentions and the cross-scale shift against explicit references
(float64), input-sized outputs, the neck under any dense head."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.models._dense import create_dense
from convzoo.models.dcfam import SharedChannelAttention, SharedSpatialAttention
from convzoo.models.rcnet import RCNeck, cross_scale_shift


def _taylor_attention(q, k, v):
    """y_i = Σ_j (1 + q̂_i·k̂_j) v_j / Σ_j (1 + q̂_i·k̂_j) with an explicit (n × n) weight matrix; rows are items."""
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    weights = 1 + q @ k.T  # (n, n)
    return (weights @ v) / weights.sum(1, keepdim=True)


def test_shared_spatial_attention_equals_the_explicit_taylor_attention():
    torch.manual_seed(0)
    attention = SharedSpatialAttention(16).double()
    attention.gamma.data.fill_(0.7)
    attention.eps = 0.0  # the reference has no guard term
    x = torch.randn(2, 16, 3, 5, dtype=torch.float64)
    out = attention(x)
    for n in range(2):
        q, k, v = (conv(x[n : n + 1])[0].flatten(1).T for conv in (attention.query, attention.key, attention.value))
        y = _taylor_attention(q, k, v)  # positions are the items: (HW, channels)
        torch.testing.assert_close(out[n], x[n] + 0.7 * y.T.reshape(16, 3, 5), rtol=0, atol=1e-9)


def test_shared_channel_attention_equals_the_explicit_taylor_attention():
    attention = SharedChannelAttention().double()
    attention.gamma.data.fill_(-0.4)
    attention.eps = 0.0
    x = torch.randn(2, 6, 4, 3, dtype=torch.float64)
    out = attention(x)
    for n in range(2):
        v = x[n].flatten(1)  # (C, HW): channels are the items
        torch.testing.assert_close(out[n], x[n] - 0.4 * _taylor_attention(v, v, v).view(6, 4, 3), rtol=0, atol=1e-9)


def test_cross_scale_shift_equals_a_loop_reference():
    stack = torch.randn(2, 4, 8, 3, 3)
    out = cross_scale_shift(stack, 2)
    for level in range(4):
        for c in range(8):
            if c < 2:
                expected = stack[:, level - 1, c] if level > 0 else torch.zeros(2, 3, 3)
            elif c < 4:
                expected = stack[:, level + 1, c] if level < 3 else torch.zeros(2, 3, 3)
            else:
                expected = stack[:, level, c]
            assert torch.equal(out[:, level, c], expected), (level, c)


def test_rcnet_neck_keeps_sizes_and_serves_every_dense_head():
    neck = RCNeck([8, 16, 32, 64], channels=16)
    features = [torch.randn(1, c, s, s + 1) for c, s in ((8, 17), (16, 9), (32, 5), (64, 3))]
    outputs = neck(features)
    assert [tuple(o.shape) for o in outputs] == [(1, 16, s, s + 1) for s in (17, 9, 5, 3)]
    for name in ("rcnet_seg", "fcn8s", "dcfam"):
        cfg = {} if name == "rcnet_seg" else {"neck": "rcnet"}
        model = create_dense(name, num_classes=3, **cfg).eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, 37, 30)).shape == (1, 3, 37, 30), name


@pytest.mark.parametrize("size", [(1, 1), (33, 47), (48, 48), (65, 62)])
def test_dcfam_output_is_the_input_size(size):
    model = create_dense("dcfam", num_classes=5).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, *size)).shape == (1, 5, *size)


def test_dcfam_trains_with_an_op_and_refuses_bad_backbones():
    model = create_dense("dcfam", num_classes=2, op="shift")
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    assert model.decoder.spatial_attention.gamma.grad is not None
    with pytest.raises(ValueError, match=r"needs four backbone stages of doubling strides .* 'resnet20' has strides"):
        create_dense("dcfam", backbone="resnet20")
    with pytest.raises(ValueError, match="neck must be one of rcnet or None, got 'fpn'"):
        create_dense("fcn8s", neck="fpn")
