"""A trained audio checkpoint at work: its top classes for WAV files (``convzoo predict-audio``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from convzoo.core.validate import check_int
from convzoo.data.audio import fit_length, read_wav
from convzoo.train.checkpoint import build_from_checkpoint
from convzoo.train.inference import Prediction

__all__ = ["predict_audio"]


def predict_audio(checkpoint: str | Path, files: Sequence[str | Path], top_k: int = 5) -> list[Prediction]:
    """The ``top_k`` most probable classes of each sound file (mono-mixed, cut or zero-padded to the clip length
    the checkpoint was trained on; a file at another sample rate is refused)."""
    check_int(top_k, "top_k", "predict-audio")
    model, saved = build_from_checkpoint(checkpoint)
    if saved.task != "audio":
        raise ValueError(
            f"predict-audio: {str(checkpoint)!r} is a {saved.task} checkpoint; predict-audio names the classes of an "
            "audio classifier (use convzoo predict for image classifiers)"
        )
    arch = saved.architecture
    names = saved.meta.get("data", {}).get("class_names") or [str(i) for i in range(arch["classes"])]
    k = min(top_k, len(names))
    predictions = []
    for path in files:
        wave = read_wav(path, arch["sample_rate"], "predict-audio").numpy()
        clip = torch.from_numpy(fit_length(wave, arch["samples"])).view(1, 1, -1)  # (1, 1, T)
        with torch.no_grad():
            probabilities = model(clip).softmax(1)[0]  # (classes,)
        top = probabilities.topk(k)
        pairs = tuple((names[i], p.item()) for p, i in zip(top.values, top.indices, strict=True))
        predictions.append(Prediction(str(path), pairs))
    return predictions
