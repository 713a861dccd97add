"""Peer tests: ``convert()`` on timm and torchvision models as they are, with the report of what it kept and why."""

from __future__ import annotations

import collections

import pytest
import torch

from convzoo import convert
from tests.interop._peer import require

pytestmark = pytest.mark.peer


def _kinds(report) -> tuple[collections.Counter, collections.Counter]:
    replaced = collections.Counter(r.before.split("(")[0] for r in report.replaced)
    kept = collections.Counter(
        s.reason.split(" (")[0].split(" computes")[0].split(" is not")[0] for s in report.skipped
    )
    return replaced, kept


def _timm(name: str):
    timm = require("timm")
    require("torchvision")
    return timm.create_model(name).eval()


def test_tf_same_convs_are_replaced_and_keep_every_size():
    """tf_efficientnet_b0's Conv2dSame (TF "SAME" per input) convs become "same"-padded operators: the feature
    map sizes stay those of the original at an odd input side, at stride 1 and 2."""
    model = _timm("tf_efficientnet_b0")
    x = torch.randn(1, 3, 67, 67)
    with torch.no_grad():
        before = [f.shape for f in model.forward_intermediates(x, intermediates_only=True)]
    report = convert(model, "conv")
    replaced, kept = _kinds(report)
    assert replaced["Conv2dSame"] > 0 and replaced["Conv2d"] > 0
    assert any(r.before.startswith("Conv2dSame") and "s=(2, 2)" in r.before for r in report.replaced)
    assert set(kept) == {"1x1 pointwise conv"}
    with torch.no_grad():
        after = [f.shape for f in model.forward_intermediates(x, intermediates_only=True)]
    assert after == before


def test_create_conv2d_mixed_and_cond_convs():
    """MixedConv2d's per-kernel convs are replaced one by one; CondConv2d (expert-mixed kernels) is kept, said why."""
    mixnet = _timm("mixnet_s")
    report = convert(mixnet, "conv")
    mixed = [r for r in report.replaced if r.name.rsplit(".", 1)[-1].isdigit() and "conv_dw" in r.name]
    assert {r.before.split("k=")[1].split(",")[0] for r in mixed} >= {"(3", "(5", "(7"}  # kernel sizes 3, 5, 7
    assert mixnet(torch.randn(1, 3, 64, 64)).shape == (1, 1000)

    cond = _timm("efficientnet_cc_b0_4e")
    report = convert(cond, "conv")
    kept = {s.name: s.reason for s in report.skipped if s.layer.startswith("CondConv2d")}
    spatial = {name for name, reason in kept.items() if not reason.startswith("1x1")}  # 1x1 ones: pointwise
    assert spatial and all("CondConv2d is not an nn.Conv2d" in kept[name] for name in spatial)
    assert cond(torch.randn(1, 3, 64, 64)).shape == (1, 1000)


def test_std_conv_with_its_own_forward_is_kept():
    model = _timm("resnetv2_50x1_bit")
    report = convert(model, "conv")
    assert not report.replaced
    reasons = {s.reason for s in report.skipped if not s.reason.startswith("1x1")}
    assert reasons == {
        "StdConv2d computes its own forward (e.g. weight standardisation), not nn.Conv's: a replacement would drop it"
    }


def test_torchvision_resnet18():
    torchvision = require("torchvision")
    model = torchvision.models.resnet18().eval()
    report = convert(model, "shift", where="layer*")
    assert {r.name for r in report.replaced} == {
        f"layer{i}.{j}.conv{k}" for i in (1, 2, 3, 4) for j in (0, 1) for k in (1, 2)
    }
    assert {s.name for s in report.skipped} == {f"layer{i}.0.downsample.0" for i in (2, 3, 4)}
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 1000)
