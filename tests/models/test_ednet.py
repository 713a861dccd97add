"""EDNet (S38): the correlation and squeezed concatenation volumes against loop references (float64), warping,
input-sized disparity for any size, any backbone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.data.stereo import random_dot_stereogram
from convzoo.models._dense import create_dense
from convzoo.models.ednet import correlation_volume, squeezed_concat_volume, warp_right


def test_correlation_volume_equals_a_loop_reference():
    g = torch.Generator().manual_seed(0)
    left, right = torch.randn(2, 5, 4, 9, generator=g, dtype=torch.float64).unbind(0)
    left, right = left[None], right[None]
    D = 6
    reference = torch.zeros(1, D, 4, 9, dtype=torch.float64)
    for d in range(D):
        for y in range(4):
            for x in range(9):
                if x - d >= 0:
                    reference[0, d, y, x] = sum(left[0, c, y, x] * right[0, c, y, x - d] for c in range(5)) / 5
    torch.testing.assert_close(correlation_volume(left, right, D), reference, rtol=0, atol=1e-12)


def test_squeezed_volume_equals_the_explicit_concatenation_volume_and_conv3d():
    g = torch.Generator().manual_seed(1)
    left = torch.randn(2, 3, 4, 7, generator=g, dtype=torch.float64)
    right = torch.randn(2, 3, 4, 7, generator=g, dtype=torch.float64)
    squeeze = nn.Conv3d(6, 2, 1).double()
    D = 5
    volume = torch.zeros(2, 6, D, 4, 7, dtype=torch.float64)  # [left(x); right(x − d)], zeros where x < d
    for d in range(D):
        volume[:, :3, d] = left
        for x in range(d, 7):
            volume[:, 3:, d, :, x] = right[:, :, :, x - d]
    reference = squeeze(volume).flatten(1, 2)  # (N, S·D, H, W)
    torch.testing.assert_close(squeezed_concat_volume(left, right, squeeze, D), reference, rtol=0, atol=1e-12)


def test_warping_the_right_view_by_the_true_disparity_gives_the_left_view():
    import numpy as np

    left, right, disparity = random_dot_stereogram(np.random.default_rng(3), 16, 32, 8)
    warped = warp_right(torch.from_numpy(right)[None].double(), torch.from_numpy(disparity)[None].double())[0]
    d = disparity.astype(int)
    for y in range(16):
        for x in range(32):
            target = x - d[y, x]
            hidden = any(d[y, x2] > d[y, x] and x2 - d[y, x2] == target for x2 in range(32))
            if target >= 0 and not hidden:
                torch.testing.assert_close(warped[:, y, x], torch.from_numpy(left[:, y, x]).double())


@pytest.mark.parametrize("cfg", [{}, {"backbone": "resnet20", "cost_stride": 2}, {"cost_stride": 1}])
def test_disparity_is_the_input_size_for_any_size(cfg):
    model = create_dense("ednet", max_disparity=16, width=16, **cfg).eval()
    with torch.no_grad():
        for size in [(16, 24), (21, 33), (32, 47)]:
            out = model(torch.randn(1, 3, *size), torch.randn(1, 3, *size))
            assert out.shape == (1, *size) and torch.all(out >= 0)


def test_ednet_trains_a_step_and_refuses_bad_arguments():
    model = create_dense("ednet", max_disparity=8, width=8, backbone="resnet20", op="shift")
    model(torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)).mean().backward()
    with pytest.raises(ValueError, match="name a backbone"):
        create_dense("ednet", op="shift")
    with pytest.raises(ValueError, match="has no stage at stride 4"):
        create_dense("ednet", backbone="shufflenet_g1")
    with pytest.raises(ValueError, match="cost_stride must be one of"):
        create_dense("ednet", cost_stride=3)
    with pytest.raises(ValueError, match="left .* and right .* differ"):
        create_dense("ednet", width=8)(torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 9))
