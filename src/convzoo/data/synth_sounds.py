"""``synth-sounds``: a seeded synthetic sound-event set, convzoo's embedded audio default (no download).

Ten classes of one-second 16 kHz clips, each one event of 0.25–0.8 s at a random onset over white background noise
at a random SNR (3–24 dB, event power over noise power) and a random gain (−20…−3 dBFS peak):

``tone`` (200–4000 Hz sine), ``chirp_up`` / ``chirp_down`` (linear sweeps over at least an octave),
``am_tone`` (4–30 Hz amplitude modulation, depth 0.6–1), ``fm_tone`` (3–15 Hz vibrato of 50–400 Hz),
``noise_burst`` (white noise), ``click_train`` (impulses at 5–40 Hz), ``harmonic_stack`` (100–500 Hz
fundamental with 4–10 harmonics falling as 1/k), ``dual_tone`` (two sines 1.3–3× apart) and ``beeps`` (a tone
gated on and off at 3–8 Hz). Events fade in and out over 5 ms (no edge click), except the clicks themselves.

Clip ``i`` is class ``i mod 10`` and is drawn from ``numpy.random.default_rng((seed, i))``, so every clip is
reproducible on its own. Of ``per_class`` clips per class (default 300: 3,000 clips) the first 80 % are the
training split and the rest the test split. The clips are made on first use and cached as int16 in
``$CONVZOO_CACHE_DIR`` (else ``$XDG_CACHE_HOME/convzoo``, else ``~/.cache/convzoo``) under ``synth-sounds/``,
written atomically (:mod:`convzoo.core.files`), so an interrupted first run leaves no half file.
"""

from __future__ import annotations

import io
import os
import sys
from functools import cache
from pathlib import Path

import numpy as np
import torch

from convzoo.core.files import atomic_write_bytes
from convzoo.core.validate import check_int
from convzoo.data.audio import TensorAudioDataset, audio_info
from convzoo.registry import DATASETS

__all__ = ["CLASSES", "SAMPLE_RATE", "load_synth_sounds", "synth_clip", "synth_clips", "synth_cache_path"]

SAMPLE_RATE = 16000
SAMPLES = 16000
SEED = 0
TRAIN_FRACTION = 0.8
VERSION = 1
CLASSES = (
    "tone",
    "chirp_up",
    "chirp_down",
    "am_tone",
    "fm_tone",
    "noise_burst",
    "click_train",
    "harmonic_stack",
    "dual_tone",
    "beeps",
)
FADE = 80  # samples: 5 ms at 16 kHz


def _event(kind: str, rng: np.random.Generator, n: int) -> np.ndarray:
    """The event waveform of ``kind``: ``n`` samples, unit peak before normalisation."""
    t = np.arange(n) / SAMPLE_RATE
    if kind == "tone":
        return np.sin(2 * np.pi * rng.uniform(200, 4000) * t + rng.uniform(0, 2 * np.pi))
    if kind in ("chirp_up", "chirp_down"):
        low = rng.uniform(200, 2000)
        high = low * rng.uniform(2.0, 3.5)
        f0, f1 = (low, high) if kind == "chirp_up" else (high, low)
        duration = n / SAMPLE_RATE
        return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * duration)))
    if kind == "am_tone":
        carrier = np.sin(2 * np.pi * rng.uniform(300, 3000) * t)
        depth = rng.uniform(0.6, 1.0)
        return carrier * (1 - depth * 0.5 * (1 + np.cos(2 * np.pi * rng.uniform(4, 30) * t)))
    if kind == "fm_tone":
        rate, deviation = rng.uniform(3, 15), rng.uniform(50, 400)
        phase = 2 * np.pi * rng.uniform(500, 3000) * t + (deviation / rate) * np.sin(2 * np.pi * rate * t)
        return np.sin(phase)
    if kind == "noise_burst":
        return rng.standard_normal(n)
    if kind == "click_train":
        out = np.zeros(n)
        period = max(int(SAMPLE_RATE / rng.uniform(5, 40)), 1)
        out[rng.integers(0, period) :: period] = 1.0
        return out
    if kind == "harmonic_stack":
        f0 = rng.uniform(100, 500)
        count = int(rng.integers(4, 11))
        return sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, count + 1))
    if kind == "dual_tone":
        f = rng.uniform(300, 1500)
        return np.sin(2 * np.pi * f * t) + np.sin(2 * np.pi * f * rng.uniform(1.3, 3.0) * t)
    if kind == "beeps":
        gate = (np.sin(2 * np.pi * rng.uniform(3, 8) * t) > 0).astype(float)
        return np.sin(2 * np.pi * rng.uniform(500, 3000) * t) * gate
    raise ValueError(f"synth-sounds: unknown event kind {kind!r}")  # pragma: no cover - CLASSES is fixed


def synth_clip(index: int, seed: int = SEED) -> tuple[np.ndarray, int]:
    """Clip ``index``: ``(waveform (16000,) float32 in [-1, 1], class index)``, drawn from ``(seed, index)``."""
    check_int(index, "index", "synth_clip", low=0)
    label = index % len(CLASSES)
    kind = CLASSES[label]
    rng = np.random.default_rng((seed, index))
    length = int(rng.uniform(0.25, 0.8) * SAMPLES)
    onset = int(rng.integers(0, SAMPLES - length + 1))
    event = _event(kind, rng, length)
    if kind != "click_train":  # 5 ms raised-cosine fades
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(FADE) / FADE)
        event[:FADE] *= ramp
        event[-FADE:] *= ramp[::-1]
    event_power = np.mean(event**2) * length / SAMPLES  # power over the whole clip
    snr_db = rng.uniform(3, 24)
    noise = rng.standard_normal(SAMPLES) * np.sqrt(event_power / 10 ** (snr_db / 10))
    clip = noise
    clip[onset : onset + length] += event
    peak = 10 ** (rng.uniform(-20, -3) / 20)
    clip *= peak / max(np.abs(clip).max(), 1e-12)
    return clip.astype(np.float32), label


def synth_clips(count: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Clips ``0 … count − 1``: waveforms ``(count, 16000)`` float32 and labels ``(count,)`` int64."""
    check_int(count, "count", "synth_clips")
    waves = np.empty((count, SAMPLES), dtype=np.float32)
    labels = np.empty(count, dtype=np.int64)
    for i in range(count):
        waves[i], labels[i] = synth_clip(i, seed)
    return waves, labels


def _cache_root() -> Path:
    if os.environ.get("CONVZOO_CACHE_DIR"):
        return Path(os.environ["CONVZOO_CACHE_DIR"])
    if sys.platform == "win32":  # pragma: no cover - platform
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "convzoo"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "convzoo"


def synth_cache_path(per_class: int, seed: int = SEED) -> Path:
    """Where the ``per_class``-clips-per-class set of ``seed`` is cached."""
    return _cache_root() / "synth-sounds" / f"v{VERSION}-seed{seed}-{per_class}x{len(CLASSES)}.npz"


@cache
def _cached(per_class: int, seed: int, path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    count = per_class * len(CLASSES)
    if path.is_file():
        try:
            with np.load(path) as saved:
                waves, labels = saved["waves"], saved["labels"]
            if waves.shape == (count, SAMPLES) and labels.shape == (count,):
                return torch.from_numpy(waves.astype(np.float32) / 32767.0), torch.from_numpy(labels)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache is made again below
    waves, labels = synth_clips(count, seed)
    pcm = np.round(waves * 32767.0).astype(np.int16)
    buffer = io.BytesIO()
    np.savez(buffer, waves=pcm, labels=labels)
    atomic_write_bytes(path, buffer.getvalue())
    return torch.from_numpy(pcm.astype(np.float32) / 32767.0), torch.from_numpy(labels)


@DATASETS.register("synth-sounds", kind="audio", dims=(1,))
def load_synth_sounds(
    split: str = "train", root: str | Path | None = None, *, per_class: int = 300, seed: int = SEED
) -> TensorAudioDataset:
    """Seeded synthetic sound events (10 classes, 1 s at 16 kHz, varied SNR and onset); 80/20 split; no download."""
    if root is not None:
        raise ValueError(f"synth-sounds: is generated, not read from a folder; got a data folder {str(root)!r}")
    check_int(per_class, "per_class", "synth-sounds", low=5)
    check_int(seed, "seed", "synth-sounds", low=0)
    waves, labels = _cached(per_class, seed, synth_cache_path(per_class, seed))
    train = (torch.arange(len(labels)) // len(CLASSES)) < int(per_class * TRAIN_FRACTION)  # first 80 % per class
    keep = train if split == "train" else ~train
    info = audio_info("synth-sounds", split, CLASSES, SAMPLES, SAMPLE_RATE)
    return TensorAudioDataset(waves[keep].unsqueeze(1), labels[keep], info)  # (n, 1, 16000)
