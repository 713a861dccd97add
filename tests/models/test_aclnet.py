"""AclNet (S21): the abstract's 155k-weight configuration, 10-ms LLF frames, one network on every front end."""

from __future__ import annotations

import pytest
import torch

from convzoo.models.registration import create_model
from convzoo.registry import MODELS


def test_registered_config_has_the_abstracts_155k_weights():
    model = create_model("aclnet")  # C1=16, C2=64, α=0.5, separable, 50 classes
    weights = sum(p.numel() for p in model.parameters() if p.dim() > 1)  # conv/linear kernels, as the paper counts
    assert abs(weights - 155_000) <= 0.005 * 155_000
    assert MODELS.get("aclnet").kind == "audio" and MODELS.get("aclnet").papers == ("aclnet",)


def test_llf_makes_one_frame_per_10_ms_and_the_hlf_reads_it_as_an_image():
    model = create_model("aclnet", classes=10).eval()
    x = torch.randn(2, 1, 16000)
    llf = model.llf(model.frontend(x))
    assert llf.shape == (2, 64, 100)  # 64 learned filters × 100 frames of 10 ms
    assert model(x).shape == (2, 10)


def test_standard_and_separable_hlf_differ_by_the_depthwise_factorisation():
    sep = create_model("aclnet", classes=10, width=0.25)
    std = create_model("aclnet", classes=10, width=0.25, separable=False)
    conv5_std = std.hlf[3][0]  # conv5: 3×3 from 16 to 16 channels
    assert conv5_std.weight.shape == (16, 16, 3, 3)
    depthwise, pointwise = sep.hlf[3][0][0], sep.hlf[3][1][0]
    assert depthwise.weight.shape == (16, 1, 3, 3) and pointwise.weight.shape == (16, 16, 1, 1)


@pytest.mark.parametrize("frontend", ["waveform", "stft", "logmel"])
def test_one_network_trains_on_each_representation(frontend):
    if frontend == "logmel":
        pytest.importorskip("librosa", reason="librosa (the audio extra) is not installed")
    torch.manual_seed(0)
    model = create_model("aclnet", classes=5, frontend=frontend, width=0.25)
    y = model(torch.randn(2, 1, 4000))
    assert y.shape == (2, 5) and torch.isfinite(y).all()
    y.logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in model.hlf.parameters())


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="frontend must be one of"):
        create_model("aclnet", frontend="mfcc")
    with pytest.raises(ValueError, match="multiple of 4"):
        create_model("aclnet", sample_rate=11025)
