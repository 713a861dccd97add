"""FCN-32s/16s/8s (S23): input-sized output for any size, skip fusion on any backbone, op swaps, published count."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo.models._dense import LearnedUpsample, bilinear_kernel, create_dense, fit_to
from convzoo.models.fcn import FCN
from convzoo.ops.base import Op

SIZES = [(1, 1), (7, 9), (17, 16), (31, 33), (32, 32), (45, 38), (63, 65), (71, 50), (97, 101)]


@pytest.mark.parametrize("name", ["fcn32s", "fcn16s", "fcn8s"])
def test_output_is_the_input_size_for_any_size(name):
    model = create_dense(name, num_classes=5).eval()
    with torch.no_grad():
        for size in SIZES:
            assert model(torch.randn(1, 3, *size)).shape == (1, 5, *size), size


@pytest.mark.parametrize("backbone", ["resnet20", "shufflenet_g1", "all_cnn_c"])
def test_any_backbone_and_its_strides(backbone):
    model = create_dense("fcn8s", backbone=backbone, num_classes=3).eval()
    strides = model.backbone.reductions
    assert [strides[i] for i in model.stages] == strides[-3:]
    with torch.no_grad():
        for size in [(35, 41), (48, 47)]:
            assert model(torch.randn(2, 3, *size)).shape == (2, 3, *size)


def test_skip_count_selects_the_stages_fused():
    for name, stages in (("fcn32s", [3]), ("fcn16s", [2, 3]), ("fcn8s", [1, 2, 3])):
        model = create_dense(name)
        assert model.stages == stages  # resnet18 strides 4, 8, 16, 32: fused down to 32, 16, 8
        assert len(model.scores) == len(stages)


def test_op_swap_reaches_the_backbone():
    model = create_dense("fcn8s", backbone="resnet20", op="shift", num_classes=4)
    assert any(isinstance(m, Op) for m in model.backbone.modules())
    out = model(torch.randn(2, 3, 29, 31))
    assert out.shape == (2, 4, 29, 31)
    out.sum().backward()


def test_scoring_layers_start_at_zero():
    model = create_dense("fcn8s", num_classes=4).eval()
    assert torch.equal(model(torch.randn(1, 3, 40, 40)), torch.zeros(1, 4, 40, 40))


def test_learned_upsampling_starts_as_bilinear_interpolation():
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    for factor in (2, 4):
        up = LearnedUpsample(3, factor).double()
        ours = fit_to(up(x), (9 * factor, 11 * factor))
        reference = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
        border = factor  # the transposed conv zero-pads where interpolation replicates the edge
        inner = (..., slice(border, -border), slice(border, -border))
        torch.testing.assert_close(ours[inner], reference[inner], rtol=0, atol=1e-12)
    kernel = bilinear_kernel(2, 2)
    assert kernel.shape == (2, 2, 4, 4) and torch.all(kernel[0, 1] == 0)


def test_fit_to_crops_and_replicates():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    assert torch.equal(fit_to(x, (2, 3)), x[..., :2, :3])
    padded = fit_to(x, (4, 5))
    assert padded.shape == (1, 1, 4, 5) and torch.equal(padded[0, 0, 3, :4], x[0, 0, 2]) and padded[0, 0, 0, 4] == 3


def test_fcn8s_vgg16_has_the_published_parameter_count():
    with torch.device("meta"):
        model = create_dense("fcn8s_vgg16")
    count = sum(p.numel() for p in model.parameters())
    assert abs(count - 134_000_000) / 134_000_000 < 0.005  # paper Table 1: FCN-VGG16, 134M


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="skips must be one of"):
        create_dense("fcn8s", skips=3)
    with pytest.raises(ValueError, match=r"backbone must be a registered classifier, got 'carn'"):
        create_dense("fcn8s", backbone="carn")
    with pytest.raises(ValueError, match=r"skips=1 fuses 2 stages but backbone 'ccnn_4_140' has 1"):
        create_dense("fcn16s", backbone="ccnn_4_140")
    with pytest.raises(TypeError, match="unknown config field"):
        create_dense("fcn8s", depth=3)
    with pytest.raises(ValueError, match="not a dense one"):
        create_dense("resnet18")
    assert isinstance(create_dense("fcn16s"), FCN)
