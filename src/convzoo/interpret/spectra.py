"""Per-channel feature spectra (S42, decoder-frequency): the DFT of every channel of a layer's feature map.

S42 takes the 2-D DFT of each channel of an intermediate feature map and follows the spectrum through the
decoder; it proves that convolution and zero padding make a decoder more likely to weaken high frequencies
and that upsampling repeats strong components. :func:`feature_spectra` gives each layer's mean power spectrum
``(H, W)`` (centred, DC in the middle) and :func:`high_frequency_share` the share of the non-DC energy beyond a
radius, so the attenuation (and :func:`padding_attenuation`'s zero-padding effect) can be measured.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.core.validate import check_int, check_number
from convzoo.registry import ANALYSES

__all__ = ["power_spectrum", "feature_spectra", "high_frequency_share", "radial_profile", "padding_attenuation"]


@ANALYSES.register(
    "feature_spectra",
    kind="analysis",
    papers=("decoder-frequency",),
    summary="per-channel power spectra of feature maps through the layers (S42)",
)
def power_spectrum(features: Tensor) -> Tensor:
    """Mean over samples and channels of ``|DFT|²`` of ``features`` ``(N, C, H, W)`` → ``(H, W)``, DC centred."""
    if features.dim() != 4:
        raise ValueError(f"power_spectrum: expected feature maps (N, C, H, W), got shape {tuple(features.shape)}")
    power = torch.fft.fft2(features.double()).abs().pow(2).mean((0, 1))  # (H, W)
    return torch.fft.fftshift(power)


def _radius(shape: Sequence[int]) -> Tensor:
    fy = torch.fft.fftshift(torch.fft.fftfreq(shape[0], dtype=torch.float64)).abs()[:, None]
    fx = torch.fft.fftshift(torch.fft.fftfreq(shape[1], dtype=torch.float64)).abs()[None]
    return torch.maximum(fy, fx)  # (H, W) in cycles per sample, 0.5 at the Nyquist border


def high_frequency_share(spectrum: Tensor, cutoff: float = 0.25) -> float:
    """Share of the non-DC energy of a centred spectrum ``(H, W)`` at frequencies above ``cutoff`` cycles/sample."""
    check_number(cutoff, "cutoff", "high_frequency_share", high=0.5)
    radius = _radius(spectrum.shape)
    return float(spectrum[radius > cutoff].sum() / spectrum[radius > 0].sum().clamp_min(1e-300))


def radial_profile(spectrum: Tensor, bins: int = 16) -> Tensor:
    """Mean power in ``bins`` rings of frequency from 0 to 0.5 cycles/sample → ``(bins,)``."""
    check_int(bins, "bins", "radial_profile")
    index = (_radius(spectrum.shape) / 0.5 * (bins - 1)).round().long().flatten()
    sums = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, spectrum.flatten())
    counts = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, torch.ones_like(spectrum.flatten()))
    return sums / counts.clamp_min(1)


def feature_spectra(model: nn.Module, x: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
    """The mean power spectrum ``(H, W)`` of every named layer's 4-D output (every conv when ``layers`` is None)."""
    modules = dict(model.named_modules())
    if layers is None:
        layers = [n for n, m in modules.items() if isinstance(m, nn.modules.conv._ConvNd)]
    unknown = [name for name in layers if name not in modules]
    if unknown:
        from convzoo.core.names import unknown_name_message

        raise ValueError(unknown_name_message("layer", unknown[0], [n for n in modules if n]))
    spectra: dict[str, Tensor] = {}

    def keep(name: str):
        def hook(_module: nn.Module, _inputs: object, out: Tensor) -> None:
            if isinstance(out, Tensor) and out.dim() == 4 and name not in spectra:
                spectra[name] = power_spectrum(out.detach())

        return hook

    handles = [modules[name].register_forward_hook(keep(name)) for name in layers]
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return spectra


def padding_attenuation(features: Tensor, padding: int, cutoff: float = 0.25) -> tuple[float, float]:
    """High-frequency share of ``features`` ``(N, C, H, W)`` before and after zero padding by ``padding`` pixels.

    For non-negative maps (post-ReLU decoder features) the padded border turns the mean into a box whose
    spectrum sits at low non-DC frequencies, so the high-frequency share drops: S42's zero-padding bottleneck.
    """
    check_int(padding, "padding", "padding_attenuation")
    padded = F.pad(features, (padding,) * 4)
    return high_frequency_share(power_spectrum(features), cutoff), high_frequency_share(power_spectrum(padded), cutoff)
