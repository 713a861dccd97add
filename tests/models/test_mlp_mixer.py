"""MLP-Mixer (S60): token mixing is the only path between patches; the patch grid is fixed; no op=."""

from __future__ import annotations

import pytest
import torch

from convzoo.models import create_model

SMALL = {"img_size": 64, "depth": 2, "dim": 16, "token_hidden": 8, "channel_hidden": 32}


def _patch_change(model) -> torch.Tensor:
    """Which patches of the last feature map change when only the top-left 16×16 input patch changes: (h, w)."""
    torch.manual_seed(0)
    x = torch.randn(1, 3, 64, 64)
    y = x.clone()
    y[..., :16, :16] += 1.0
    with torch.no_grad():
        diff = (model.forward_stages(x)[-1] - model.forward_stages(y)[-1]).abs().amax(dim=1)[0]  # (4, 4)
    return diff > 1e-6


def test_token_mixing_is_the_only_path_between_patches():
    model = create_model("mixer_s16_224", **SMALL).eval()
    assert _patch_change(model).all()  # token MLPs spread one patch's change to all 4×4 patches
    with torch.no_grad():
        for layer in model.stages[0].blocks:
            layer.token_mlp[2].weight.zero_()
            layer.token_mlp[2].bias.zero_()
    changed = _patch_change(model)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0, 0] = True  # without token mixing, each patch is processed on its own
    assert torch.equal(changed, expected)


def test_token_mlp_width_is_the_number_of_patches():
    model = create_model("mixer_b16_224", depth=1)
    layer = model.stages[0].blocks[0]
    assert layer.token_mlp[0].in_features == (224 // 16) ** 2 and layer.token_mlp[0].out_features == 384
    assert layer.channel_mlp[0].in_features == 768 and layer.channel_mlp[0].out_features == 3072


def test_wrong_input_size_raises():
    model = create_model("mixer_s16_224", **SMALL)
    with pytest.raises(ValueError, match=r"mlp_mixer: the token-mixing MLP is built for a 4×4 patch grid"):
        model(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"img_size 40 must be a positive multiple of patch_size 16"):
        create_model("mixer_s16_224", img_size=40)


def test_takes_no_op():
    with pytest.raises(ValueError, match=r"mixer_b16_224: takes no op="):
        create_model("mixer_b16_224", op="conv")


def test_features_only_gives_the_patch_grid_map():
    model = create_model("mixer_s16_224", features_only=True, **SMALL)
    (feature,) = model(torch.randn(2, 3, 64, 64))
    assert feature.shape == (2, 16, 4, 4)
    assert not any(n.startswith("model.final_norm") for n, _ in model.named_parameters())
