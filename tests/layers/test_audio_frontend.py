"""Audio front ends: log-mel equals librosa's melspectrogram in dB (peer), the STFT equals a DFT loop, shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from convzoo.layers.audio_frontend import LogMel, Spectrogram, Waveform, make_frontend


def tone(seconds: float = 0.25, rate: int = 16000, freq: float = 1000.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


@pytest.mark.peer
def test_logmel_equals_librosa_melspectrogram_in_db_on_a_tone():
    librosa = pytest.importorskip("librosa", reason="librosa (the audio extra) is not installed")
    y = tone() + 0.01 * np.random.default_rng(0).standard_normal(4000)
    front = LogMel(16000, n_fft=512, win_length=400, hop_length=160, n_mels=64)
    ours = front(torch.from_numpy(y).view(1, 1, -1))[0, 0].numpy()  # (64, frames)
    mel = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=64, power=2.0, center=True
    )
    theirs = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    assert ours.shape == theirs.shape == (64, 1 + 4000 // 160)
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9)
    assert ours.mean(axis=1).argmax() == theirs.mean(axis=1).argmax()  # the tone's band


def test_stft_power_equals_a_direct_dft_of_hann_windowed_frames():
    y = torch.from_numpy(tone(0.05, freq=440.0)).double()  # (800,)
    front = Spectrogram(16000, n_fft=64, win_length=48, hop_length=16)
    ours = front.power(y.view(1, 1, -1))[0]  # (33, frames)
    window = torch.zeros(64, dtype=torch.float64)
    n = torch.arange(48, dtype=torch.float64)
    window[8:56] = 0.5 - 0.5 * torch.cos(2 * math.pi * n / 48)  # periodic Hann, centred in n_fft
    padded = torch.nn.functional.pad(y, (32, 32))  # centre=True, zero padding
    k = torch.arange(33, dtype=torch.float64)[:, None]
    m = torch.arange(64, dtype=torch.float64)[None]
    basis = torch.exp(-2j * math.pi * k * m / 64)  # (33, 64)
    for f in range(ours.shape[1]):
        frame = padded[f * 16 : f * 16 + 64] * window
        expected = (basis @ frame.to(torch.complex128)).abs().square()
        torch.testing.assert_close(ours[:, f], expected, rtol=1e-9, atol=1e-9)


def test_shapes_and_the_same_waveform_in():
    x = torch.randn(2, 1, 1600)
    assert Waveform()(x) is x
    assert Spectrogram()(x).shape == (2, 1, 257, 11) == (2, 1, *Spectrogram().output_size(1600))
    pytest.importorskip("librosa", reason="librosa (the audio extra) is not installed")
    assert make_frontend("logmel", n_mels=40)(x).shape == (2, 1, 40, 11)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="frontend must be one of"):
        make_frontend("mfcc")
    with pytest.raises(ValueError, match=r"expected waveforms \(N, 1, T\)"):
        Spectrogram()(torch.randn(2, 1600))
    with pytest.raises(ValueError, match="win_length"):
        Spectrogram(n_fft=256, win_length=400)
    with pytest.raises(TypeError, match="takes no options"):
        make_frontend("waveform", n_fft=512)
