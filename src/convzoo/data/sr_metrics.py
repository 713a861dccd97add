"""The SR evaluation protocol: PSNR and SSIM on the Y channel with a ``scale``-pixel border crop, and bicubic.

The field (EDSR, CARN, IMDN, … and BasicSR's ``calculate_psnr(test_y_channel=True, crop_border=s)``) converts RGB to
ITU-R BT.601 luma in [16, 235]/255, crops ``scale`` pixels from every side and measures on that; the formulas are
scikit-image's ``peak_signal_noise_ratio`` and ``structural_similarity`` (Gaussian window σ = 1.5, as Wang et al.).
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from convzoo.core.validate import check_int

__all__ = ["rgb_to_y", "psnr_y", "ssim_y", "bicubic_upscale"]


def rgb_to_y(image: Tensor) -> Tensor:
    """BT.601 luma of RGB ``(…, 3, H, W)``: ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``, ``(…, H, W)``."""
    r, g, b = image.unbind(-3)
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def _y_pairs(sr: Tensor, hr: Tensor, border: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if sr.shape != hr.shape or sr.dim() not in (3, 4) or sr.shape[-3] != 3:
        raise ValueError(f"sr metrics: need two RGB images of one shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    check_int(border, "border", "sr metrics", low=0)
    sr_y = rgb_to_y(sr.detach().clamp(0, 1).double().cpu())
    hr_y = rgb_to_y(hr.detach().double().cpu())
    if border:
        sr_y, hr_y = sr_y[..., border:-border, border:-border], hr_y[..., border:-border, border:-border]
    return list(
        zip(sr_y.reshape(-1, *sr_y.shape[-2:]).numpy(), hr_y.reshape(-1, *hr_y.shape[-2:]).numpy(), strict=True)
    )


def psnr_y(sr: Tensor, hr: Tensor, scale: int) -> float:
    """Mean PSNR (dB) of ``sr`` against ``hr`` ((N,) 3, H, W in [0, 1]), on Y, border ``scale`` cropped."""
    from skimage.metrics import peak_signal_noise_ratio

    pairs = _y_pairs(sr, hr, scale)
    return float(np.mean([peak_signal_noise_ratio(h, s, data_range=1.0) for s, h in pairs]))


def ssim_y(sr: Tensor, hr: Tensor, scale: int) -> float:
    """Mean SSIM over the batch, on Y with the border cropped (Gaussian-weighted, σ = 1.5, as the field reports)."""
    from skimage.metrics import structural_similarity

    pairs = _y_pairs(sr, hr, scale)
    return float(
        np.mean(
            [
                structural_similarity(
                    h, s, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
                )
                for s, h in pairs
            ]
        )
    )


def bicubic_upscale(lr: Tensor, scale: int) -> Tensor:
    """The baseline: bicubic interpolation of ``lr`` (N, C, H, W) to (N, C, sH, sW), clamped to [0, 1]."""
    check_int(scale, "scale", "bicubic_upscale")
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
