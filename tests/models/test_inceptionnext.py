"""InceptionNeXt (S40): the Inception DW mixer as official, per-stage MLP ratios, the MLP head, op= replacement."""

from __future__ import annotations

import pytest
import torch

from convzoo.models import create_model
from convzoo.ops.inception_dw import InceptionDW

SMALL = {"depths": (1, 1, 1, 1)}


def test_mixer_is_inception_dw_with_official_split():
    model = create_model("inceptionnext_tiny", **SMALL)
    for stage, width in zip(model.stages, (96, 192, 384, 768), strict=True):
        mixer = stage.blocks[0].mixer
        assert isinstance(mixer, InceptionDW)
        # official: gc = int(C · 1/8) channels per 3×3, 1×11, 11×1 branch; the rest pass through
        assert mixer.branch_channels == width // 8
        assert mixer.identity_channels == width - 3 * (width // 8)
        assert mixer.kernel_size == (3, 3) and mixer.band_kernel_size == 11


def test_mlp_ratios_and_mlp_head():
    model = create_model("inceptionnext_tiny", **SMALL)
    hidden = [stage.blocks[0].mlp[0].out_channels for stage in model.stages]
    assert hidden == [4 * 96, 4 * 192, 4 * 384, 3 * 768]
    fc1, _, norm = model.head.hidden
    assert fc1.out_features == 3 * 768 and norm.normalized_shape == (3 * 768,) and norm.eps == 1e-6


def test_op_replaces_every_mixer():
    model = create_model("inceptionnext_tiny", op="dwsep", num_classes=4, **SMALL)
    mixers = [block.mixer for stage in model.stages for block in stage.blocks]
    assert all(type(m).__name__ != "InceptionDW" and type(m).__module__.startswith("convzoo.ops") for m in mixers)
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 4)
    out.sum().backward()


def test_op_that_cannot_take_the_kernel_raises_and_a_larger_kernel_builds():
    with pytest.raises(
        ValueError, match=r"^inceptionnext_tiny: op 'dilated_reparam' cannot replace the conv at stages"
    ):
        create_model("inceptionnext_tiny", op="dilated_reparam", **SMALL)
    model = create_model("inceptionnext_tiny", op="dilated_reparam", square_kernel_size=7, **SMALL)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 1000)


def test_op_inception_dw_takes_the_config_bands():
    model = create_model("inceptionnext_tiny", op="inception_dw", band_kernel_size=7, branch_ratio=0.25, **SMALL)
    mixer = model.stages[0].blocks[0].mixer
    assert mixer.band_kernel_size == 7 and mixer.branch_channels == 96 // 4
