"""spd: space-to-depth then a stride-1 conv, checked against an independent composition."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from convzoo import create_op
from convzoo.layers.space_to_depth import space_to_depth
from convzoo.ops.spd import space_to_depth_like


def test_spd_equals_pixel_unshuffle_then_conv():
    op = create_op("spd", 3, 5, 3, 2).double()
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    expected = F.conv2d(F.pixel_unshuffle(x, 2), op.weight, op.bias, padding=1)
    torch.testing.assert_close(op(x), expected)


def test_spd_pads_odd_sizes_at_the_end():
    op = create_op("spd", 2, 4, 3, 2).double()
    x = torch.randn(1, 2, 7, 5, dtype=torch.float64)
    padded = F.pad(x, (0, 1, 0, 1))
    torch.testing.assert_close(op(x), F.conv2d(F.pixel_unshuffle(padded, 2), op.weight, op.bias, padding=1))


def test_spd_sees_every_pixel_while_a_strided_1x1_does_not():
    op = create_op("spd", 1, 1, 1, 2, bias=False)
    with torch.no_grad():
        op.weight.fill_(1.0)
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0  # an odd pixel that stride-2 subsampling would drop
    assert op(x)[0, 0, 0, 0].item() == 1.0


def test_spd_params():
    assert sum(p.numel() for p in create_op("spd", 4, 8, 3, 2, bias=False).parameters()) == 4 * 4 * 8 * 9


def test_spd_rejects_unequal_strides():
    with pytest.raises(ValueError, match=r"spd: space-to-depth needs one scale for every axis, got stride=\(1, 2\)"):
        create_op("spd", 4, 4, stride=(1, 2))


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ((2, 3, 8), torch.contiguous_format),
        ((2, 3, 8, 6), torch.contiguous_format),
        ((2, 3, 8, 6), torch.channels_last),
        ((2, 3, 4, 6, 2), torch.channels_last_3d),
    ],
)
def test_space_to_depth_like_is_the_layer_in_the_input_layout(shape, layout):
    x = torch.randn(*shape, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_(True)
    y = space_to_depth_like(x, 2)
    assert y.is_contiguous(memory_format=layout)
    torch.testing.assert_close(y, space_to_depth(x.detach(), 2), rtol=0, atol=0)
    grad = torch.randn_like(y)
    torch.testing.assert_close(
        torch.autograd.grad(y, x, grad)[0], torch.autograd.grad(space_to_depth(x, 2), x, grad)[0]
    )
