import pytest
import torch
from torch import nn

from convzoo.models.registration import create_model
from convzoo.ops.shift import shift_offsets, spatial_shift


def test_no_kernel_wider_than_one_anywhere():
    model = create_model("scnet_t")
    convs = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    assert len(convs) == 1 + 2 * 16 + 2 * 2 + 2
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            assert parameter.dim() < 3 or all(k == 1 for k in parameter.shape[2:]), module


def test_the_shift_is_what_the_model_uses():
    x = torch.arange(16.0).view(1, 8, 1, 2).expand(1, 8, 2, 2).contiguous()
    shifted = spatial_shift(x, shift_offsets(2, "all"), (1, 1), (1, 1))
    assert shifted.shape == x.shape and (shifted == 0).any()  # vacated pixels are zero, no parameters


def test_convs_start_as_the_released_codes_he_times_a_tenth_with_zero_biases():
    torch.manual_seed(0)
    model = create_model("scnet_t")
    body = model.body[0].body[0]  # a 64 → 64 pointwise conv
    assert body.weight.std().item() == pytest.approx(0.1 * (2 / 64) ** 0.5, rel=0.1)
    assert all(torch.count_nonzero(m.bias) == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))
