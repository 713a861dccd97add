"""S42 feature spectra: per-layer spectra, zero padding attenuates the high frequencies, upsampling repeats them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from convzoo import create_model
from convzoo.interpret.spectra import (
    feature_spectra,
    high_frequency_share,
    padding_attenuation,
    power_spectrum,
    radial_profile,
)


def test_zero_padding_attenuates_the_high_frequencies_of_decoder_features():
    generator = torch.Generator().manual_seed(0)
    post_relu = torch.randn(64, 4, 16, 16, generator=generator).relu()  # non-negative, as after a ReLU
    before, after = padding_attenuation(post_relu, 2)
    assert after < before - 0.05
    # the mechanism is the mean: zero-mean white noise stays (nearly) as it was
    before, after = padding_attenuation(torch.randn(64, 4, 16, 16, generator=generator), 2)
    assert abs(after - before) < 0.03


def test_nearest_upsampling_repeats_the_spectrum():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 2, 8, 8, generator=generator)
    spectrum = torch.fft.ifftshift(power_spectrum(F.interpolate(x, scale_factor=2, mode="nearest")))
    # power at f and at f + 1/2 (the repeated copy) differ only by the nearest-neighbour filter's gain
    assert spectrum[1, 0] > 0 and spectrum[9, 0] > 0
    assert torch.allclose(spectrum[8].sum(), torch.tensor(0.0, dtype=spectrum.dtype), atol=1e-8)  # the gain's zero


def test_spectra_of_a_model_and_the_profile():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10, layers=(1, 1, 1))
    spectra = feature_spectra(model, torch.randn(2, 3, 16, 16), ["stages.0", "stages.2"])
    assert spectra["stages.0"].shape == (16, 16) and spectra["stages.2"].shape == (4, 4)
    assert 0 < high_frequency_share(spectra["stages.0"]) < 1
    profile = radial_profile(spectra["stages.0"], bins=8)
    assert profile.shape == (8,) and (profile > 0).all()
