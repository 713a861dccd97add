import math

import pytest
import torch

from convzoo.data.sr_metrics import bicubic_upscale, psnr_y, rgb_to_y, ssim_y


def test_psnr_on_the_cropped_y_channel():
    hr = torch.full((1, 3, 12, 12), 0.5)
    sr = hr + 0.1
    mse = ((rgb_to_y(sr) - rgb_to_y(hr)) ** 2).mean().item()
    assert psnr_y(sr, hr, 2) == pytest.approx(10 * math.log10(1 / mse))
    damaged = sr.clone()
    damaged[..., :2, :] = 1.0  # damage confined to the 2-pixel border: cropped away at ×2, seen at ×1
    assert psnr_y(damaged, hr, 2) == pytest.approx(psnr_y(sr, hr, 2))
    assert psnr_y(damaged, hr, 1) < psnr_y(sr, hr, 2)


def test_ssim_is_one_for_identical_images_and_less_otherwise():
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 24, 24)
    assert ssim_y(hr, hr, 3) == pytest.approx(1.0)
    assert ssim_y(hr.flip(-1), hr, 3) < 0.5


def test_bicubic_baseline_shape_and_errors():
    assert bicubic_upscale(torch.rand(1, 3, 5, 7), 3).shape == (1, 3, 15, 21)
    with pytest.raises(ValueError, match="one shape"):
        psnr_y(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 5, 4), 2)
