"""CAS-ViT (S25): the additive token mixer against its formula, published counts, the two heads and op=."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.models.casvit import AdditiveTokenMixer
from convzoo.models.counting import count_params
from convzoo.ops.base import Op


def _bn(x, bn):
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


def test_additive_token_mixer_equals_its_formula():
    torch.manual_seed(0)
    mixer = AdditiveTokenMixer(6).double().eval()
    for m in mixer.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    x = torch.randn(2, 6, 5, 4, dtype=torch.float64)
    w = mixer.qkv.weight[:, :, 0, 0]
    q, k, v = (torch.einsum("oc,nchw->nohw", w[i * 6 : (i + 1) * 6], x) for i in range(3))

    def phi(t, oper):
        spatial, channel = oper[0].block, oper[1].block
        dw = F.conv2d(t, spatial[0].weight, spatial[0].bias, padding=1, groups=6)
        gate = torch.sigmoid(
            torch.einsum("oc,nchw->nohw", spatial[3].weight[:, :, 0, 0], torch.relu(_bn(dw, spatial[1])))
        )
        t = t * gate  # one gate per pixel
        pooled = t.mean((2, 3))  # (N, C)
        return t * torch.sigmoid(pooled @ channel[1].weight[:, :, 0, 0].T)[:, :, None, None]

    s = phi(q, mixer.oper_q) + phi(k, mixer.oper_k)
    s = F.conv2d(s, mixer.dwc.weight, mixer.dwc.bias, padding=1, groups=6) * v
    expected = F.conv2d(s, mixer.proj.weight, mixer.proj.bias, padding=1, groups=6)
    torch.testing.assert_close(mixer(x), expected)


@pytest.mark.parametrize(("name", "published"), [("casvit_xs", 3.20e6), ("casvit_m", 12.42e6)])
def test_published_counts_include_the_distillation_head(name, published):
    with torch.device("meta"):
        full, single = create_model(name), create_model(name, distillation=False)
    assert abs(count_params(full) - published) <= 0.005 * published
    dim = full.feature_info[-1].channels
    assert count_params(full) - count_params(single) == dim * 1000 + 1000


def test_logits_are_the_mean_of_both_heads():
    torch.manual_seed(0)
    model = create_model("casvit_xs", depths=(1, 1, 1, 1), num_classes=4).eval()
    x = torch.randn(2, 3, 32, 32)
    feats = model.forward_features(x)
    normed = model.head.norm(feats).mean((2, 3))
    expected = (model.head.head.fc(normed) + model.head.dist.fc(normed)) / 2
    torch.testing.assert_close(model(x), expected)
    assert model.forward_head(feats, pre_logits=True).shape == (2, 220)


def test_op_replaces_every_depthwise_conv():
    model = create_model("casvit_xs", depths=(1, 1, 1, 1), op="conv", num_classes=3)
    ops = [m for m in model.modules() if isinstance(m, Op)]
    assert len(ops) == 4 * 5  # per block: local dw, two spatial gates, dwc, proj
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 3)
