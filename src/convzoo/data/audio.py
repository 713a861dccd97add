"""What every convzoo audio dataset returns: waveforms in memory plus a description, and the WAV reader.

An audio set holds ``waveforms`` ``(N, 1, T)`` float32 in [-1, 1] (every clip cut or zero-padded to ``T``
samples) and ``labels`` ``(N,)`` int64. Its :class:`~convzoo.data.base.DatasetInfo` has ``channels=1``,
``image_size=(T,)`` (so a trained model's input shape is ``(1, 1, T)``) and ``extra={"sample_rate": sr}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from convzoo.data.base import DatasetInfo

__all__ = ["TensorAudioDataset", "audio_info", "fit_length", "read_wav"]


class TensorAudioDataset(Dataset):
    """Waveforms ``(N, 1, T)`` and integer labels ``(N,)`` held in memory."""

    def __init__(self, waveforms: Tensor, labels: Tensor, info: DatasetInfo) -> None:
        if waveforms.dim() != 3 or waveforms.shape[1] != 1 or labels.dim() != 1 or len(waveforms) != len(labels):
            raise ValueError(
                f"{info.name}: expected waveforms (N, 1, T) and labels (N,), got {tuple(waveforms.shape)} and "
                f"{tuple(labels.shape)}"
            )
        self.waveforms = waveforms
        self.labels = labels
        self.info = info

    def __len__(self) -> int:
        return self.waveforms.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.waveforms[index], self.labels[index]


def audio_info(
    name: str, split: str, class_names: tuple[str, ...], samples: int, sample_rate: int, root: str | None = None
) -> DatasetInfo:
    """The :class:`DatasetInfo` of an audio set (waveforms are not standardised: mean 0, std 1 recorded)."""
    return DatasetInfo(
        name=name,
        split=split,
        num_classes=len(class_names),
        channels=1,
        image_size=(samples,),
        class_names=class_names,
        mean=(0.0,),
        std=(1.0,),
        root=root,
        extra={"sample_rate": sample_rate},
    )


def fit_length(wave: np.ndarray, samples: int) -> np.ndarray:
    """``wave`` (T,) cut to its first ``samples`` samples or zero-padded at the end to ``samples``."""
    if len(wave) >= samples:
        return wave[:samples]
    return np.pad(wave, (0, samples - len(wave)))


def read_wav(path: str | Path, sample_rate: int, owner: str) -> Tensor:
    """The mono waveform ``(T,)`` float32 in [-1, 1] of the sound file ``path`` (channels averaged).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file soundfile cannot read or one
    recorded at another rate than ``sample_rate`` (convzoo does not resample silently).
    """
    try:
        import soundfile
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"{owner}: reading WAV files needs soundfile (pip install 'convzoo[audio]' or 'soundfile>=0.12')"
        ) from None
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{owner}: no sound file {str(path)!r}")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, channels)
    except Exception as error:  # soundfile raises its own LibsndfileError / RuntimeError types
        raise ValueError(f"{owner}: cannot read {str(path)!r} as audio: {error}") from None
    if rate != sample_rate:
        raise ValueError(f"{owner}: {str(path)!r} is sampled at {rate} Hz, expected {sample_rate} Hz")
    return torch.from_numpy(data.mean(axis=1))
