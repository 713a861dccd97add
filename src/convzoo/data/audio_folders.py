"""ESC-50 and Speech Commands read from their released folder layouts (WAV files through soundfile).

- ``esc50``: ``ROOT/meta/esc50.csv`` (columns ``filename, fold, target, category, ...``) and ``ROOT/audio/*.wav``,
  5-s clips at 44.1 kHz; fold ``test_fold`` (default 5) is the test split, the other four the training split.
- ``speech-commands``: ``ROOT/<word>/*.wav`` (1-s clips at 16 kHz, shorter ones zero-padded), with
  ``ROOT/testing_list.txt`` and ``ROOT/validation_list.txt``: the test split is the testing list, the training split
  every clip in neither list. Folders starting with ``_`` (``_background_noise_``) are not classes.

A missing folder or list, a file at another sample rate and a file soundfile cannot read each raise naming the path
and what was expected.
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from convzoo.core.validate import check_int
from convzoo.data.audio import TensorAudioDataset, audio_info, fit_length, read_wav
from convzoo.data.base import check_root
from convzoo.registry import DATASETS

__all__ = ["load_esc50", "load_speech_commands"]

ESC50_LAYOUT = "ROOT/meta/esc50.csv and ROOT/audio/*.wav (the ESC-50 release)"
SPEECH_LAYOUT = "ROOT/<word>/*.wav, ROOT/testing_list.txt and ROOT/validation_list.txt (Speech Commands)"
ESC50_RATE, ESC50_SAMPLES = 44100, 5 * 44100
SPEECH_RATE, SPEECH_SAMPLES = 16000, 16000


def _stack(paths: list[Path], rate: int, samples: int, owner: str) -> torch.Tensor:
    waves = [torch.from_numpy(fit_length(read_wav(p, rate, owner).numpy(), samples)) for p in paths]
    return torch.stack(waves).unsqueeze(1) if waves else torch.zeros(0, 1, samples)  # (N, 1, samples)


@DATASETS.register("esc50", kind="audio", dims=(1,))
def load_esc50(split: str = "train", root: str | Path | None = None, *, test_fold: int = 5) -> TensorAudioDataset:
    """ESC-50 (2,000 five-second clips, 50 classes, 44.1 kHz) from its release folder; one fold held out."""
    folder = check_root("esc50", root, ESC50_LAYOUT)
    check_int(test_fold, "test_fold", "esc50", high=5)
    meta = folder / "meta" / "esc50.csv"
    if not meta.is_file():
        raise FileNotFoundError(f"esc50: no {str(meta)!r}; expected layout: {ESC50_LAYOUT}")
    with open(meta, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"filename", "fold", "target", "category"} - set(rows[0] if rows else {})
    if missing:
        raise ValueError(f"esc50: {str(meta)!r} lacks the column(s) {', '.join(sorted(missing))}")
    names = {int(r["target"]): r["category"] for r in rows}
    class_names = tuple(names[i] for i in sorted(names))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"esc50: targets in {str(meta)!r} must be 0 … {len(names) - 1}, got {sorted(names)}")
    kept = [r for r in rows if (int(r["fold"]) == test_fold) == (split == "test")]
    waves = _stack([folder / "audio" / r["filename"] for r in kept], ESC50_RATE, ESC50_SAMPLES, "esc50")
    labels = torch.tensor([int(r["target"]) for r in kept], dtype=torch.long)
    info = audio_info("esc50", split, class_names, ESC50_SAMPLES, ESC50_RATE, root=str(folder))
    return TensorAudioDataset(waves, labels, info)


def _listed(folder: Path, name: str) -> set[str]:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"speech-commands: no {str(path)!r}; expected layout: {SPEECH_LAYOUT}")
    return {line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


@DATASETS.register("speech-commands", kind="audio", dims=(1,))
def load_speech_commands(split: str = "train", root: str | Path | None = None) -> TensorAudioDataset:
    """Speech Commands (one-second spoken words, 16 kHz) from its release folder; the testing list is the test set."""
    folder = check_root("speech-commands", root, SPEECH_LAYOUT)
    testing, validation = _listed(folder, "testing_list.txt"), _listed(folder, "validation_list.txt")
    class_names = tuple(sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_")))
    if not class_names:
        raise FileNotFoundError(
            f"speech-commands: no word folders in {str(folder)!r}; expected layout: {SPEECH_LAYOUT}"
        )
    paths, labels = [], []
    for label, word in enumerate(class_names):
        for path in sorted((folder / word).glob("*.wav")):
            relative = f"{word}/{path.name}"
            if (relative in testing) if split == "test" else (relative not in testing and relative not in validation):
                paths.append(path)
                labels.append(label)
    waves = _stack(paths, SPEECH_RATE, SPEECH_SAMPLES, "speech-commands")
    info = audio_info("speech-commands", split, class_names, SPEECH_SAMPLES, SPEECH_RATE, root=str(folder))
    return TensorAudioDataset(waves, torch.tensor(labels, dtype=torch.long), info)
