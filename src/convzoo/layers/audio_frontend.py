"""Audio front ends: the raw waveform, a log-power STFT and a log-mel spectrogram, as modules.

Every audio model of convzoo (AclNet (S21), the PANN/ConvNeXt variants (S24), the ensemble (S57), ...) takes a
batch of waveforms ``(N, 1, T)`` and runs one of these first, so the same network trains on either representation
(``frontend="waveform" | "stft" | "logmel"``):

- :class:`Waveform`: ``(N, 1, T) → (N, 1, T)`` unchanged (a shape check);
- :class:`Spectrogram`: ``(N, 1, T) → (N, 1, n_fft/2 + 1, frames)``, ``10·log10(max(|STFT|², amin))`` with
  ``torch.stft`` (Hann window, centred frames, zero padding as librosa ≥ 0.10 pads);
- :class:`LogMel`: ``(N, 1, T) → (N, 1, n_mels, frames)``, the power STFT through librosa's Slaney-normalised mel
  filter bank (``librosa.filters.mel``, held as a buffer, so a saved model needs no librosa to run), then
  ``10·log10(max(·, amin))``: librosa's ``power_to_db(melspectrogram(...), ref=1, top_db=None)``.

``frames = 1 + T // hop_length``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.fx._symbolic_trace import is_fx_symbolic_tracing

from convzoo.core.validate import check_choice, check_int, check_number

__all__ = ["FRONTENDS", "LogMel", "Spectrogram", "Waveform", "make_frontend"]

FRONTENDS = ("waveform", "stft", "logmel")
AMIN = 1e-10


def _check_waveform(x: Tensor, owner: str) -> None:
    if is_fx_symbolic_tracing() or torch.compiler.is_compiling():  # a trace has no concrete shape to check
        return
    if x.dim() != 3 or x.shape[1] != 1:
        raise ValueError(f"{owner}: expected waveforms (N, 1, T), got shape {tuple(x.shape)}")


class Waveform(nn.Module):
    """The raw waveform: ``(N, 1, T) → (N, 1, T)``, unchanged."""

    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__()
        self.sample_rate = check_int(sample_rate, "sample_rate", "Waveform")
        self.out_channels = 1

    def output_size(self, samples: int) -> tuple[int, ...]:
        """``(T,)``: the shape after the channel axis for an input of ``samples`` samples."""
        return (samples,)

    def forward(self, x: Tensor) -> Tensor:
        _check_waveform(x, "Waveform")
        return x


class Spectrogram(nn.Module):
    """Log-power STFT: ``(N, 1, T) → (N, 1, n_fft // 2 + 1, 1 + T // hop_length)`` in dB (``10·log10``).

    ``n_fft`` 512, ``win_length`` 400 and ``hop_length`` 160 are 32 ms / 25 ms / 10 ms at 16 kHz, the usual
    analysis of the audio papers here. The periodic Hann window is made in the input's dtype.
    """

    def __init__(
        self, sample_rate: int = 16000, n_fft: int = 512, win_length: int | None = 400, hop_length: int = 160
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.sample_rate = check_int(sample_rate, "sample_rate", owner)
        self.n_fft = check_int(n_fft, "n_fft", owner, low=2)
        self.win_length = check_int(n_fft if win_length is None else win_length, "win_length", owner, high=n_fft)
        self.hop_length = check_int(hop_length, "hop_length", owner)
        self.out_channels = 1

    def output_size(self, samples: int) -> tuple[int, ...]:
        return (self.n_fft // 2 + 1, 1 + samples // self.hop_length)

    def power(self, x: Tensor) -> Tensor:
        """``|STFT|²``: ``(N, 1, T) → (N, n_fft // 2 + 1, frames)``."""
        _check_waveform(x, type(self).__name__)
        window = torch.hann_window(self.win_length, periodic=True, dtype=x.dtype, device=x.device)
        spec = torch.stft(
            x[:, 0],
            self.n_fft,
            self.hop_length,
            self.win_length,
            window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # (N, F, frames)
        return spec.real.square() + spec.imag.square()

    def forward(self, x: Tensor) -> Tensor:
        power = self.power(x)  # (N, F, frames)
        return (10.0 / math.log(10.0)) * power.clamp_min(AMIN).log().unsqueeze(1)  # (N, 1, F, frames)

    def extra_repr(self) -> str:
        return f"n_fft={self.n_fft}, win_length={self.win_length}, hop_length={self.hop_length}"


class LogMel(Spectrogram):
    """Log-mel spectrogram: ``(N, 1, T) → (N, 1, n_mels, 1 + T // hop_length)`` in dB.

    The ``(n_mels, n_fft // 2 + 1)`` filter bank is librosa's (``librosa.filters.mel``, Slaney mel scale and area
    normalisation), computed once and stored as a buffer; building the module needs librosa (the ``audio`` extra).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        win_length: int | None = 400,
        hop_length: int = 160,
        n_mels: int = 64,
        fmin: float = 0.0,
        fmax: float | None = None,
    ) -> None:
        super().__init__(sample_rate, n_fft, win_length, hop_length)
        self.n_mels = check_int(n_mels, "n_mels", "LogMel")
        nyquist = sample_rate / 2
        self.fmin = check_number(fmin, "fmin", "LogMel", low=0.0, low_open=False, high=nyquist)
        self.fmax = nyquist if fmax is None else check_number(fmax, "fmax", "LogMel", low=self.fmin, high=nyquist)
        try:
            import librosa
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(
                "LogMel: the mel filter bank comes from librosa, which is not installed "
                "(pip install 'convzoo[audio]' or pip install 'librosa>=0.10')"
            ) from None
        # librosa's own default dtype (float32), the bank its melspectrogram uses; held in float64 so that a
        # float64 module computes exactly what librosa computes
        bank = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=self.fmin, fmax=self.fmax)
        self.register_buffer("mel_basis", torch.from_numpy(bank).double())  # (n_mels, n_fft // 2 + 1)

    def output_size(self, samples: int) -> tuple[int, ...]:
        return (self.n_mels, 1 + samples // self.hop_length)

    def forward(self, x: Tensor) -> Tensor:
        power = self.power(x)  # (N, F, frames)
        mel = torch.matmul(self.mel_basis.to(power.dtype), power)  # (N, n_mels, frames)
        return (10.0 / math.log(10.0)) * mel.clamp_min(AMIN).log().unsqueeze(1)  # (N, 1, n_mels, frames)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, n_mels={self.n_mels}, fmin={self.fmin}, fmax={self.fmax}"


def make_frontend(name: str, sample_rate: int = 16000, **options: object) -> nn.Module:
    """The front end ``name`` (``waveform``, ``stft`` or ``logmel``) at ``sample_rate``; ``options`` go to its
    constructor (``n_fft``, ``hop_length``, ``n_mels``, ...)."""
    check_choice(name, FRONTENDS, "frontend", "make_frontend")
    if name == "waveform":
        if options:
            raise TypeError(f"make_frontend: the waveform front end takes no options, got {sorted(options)}")
        return Waveform(sample_rate)
    return (Spectrogram if name == "stft" else LogMel)(sample_rate, **options)
