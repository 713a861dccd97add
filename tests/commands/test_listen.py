"""convzoo train --task audio on synth-sounds, then convzoo predict-audio on WAV files and convzoo eval; the task's
options and usage errors (exit 2, one line)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from convzoo.cli import main
from convzoo.data.synth_sounds import CLASSES, synth_clip

soundfile = pytest.importorskip("soundfile", reason="soundfile (the audio extra) is not installed")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One epoch of a narrow AclNet on 5 clips per class of synth-sounds."""
    out = tmp_path_factory.mktemp("audio-run")
    cache = tmp_path_factory.mktemp("cache")
    patch = pytest.MonkeyPatch()
    patch.setenv("CONVZOO_CACHE_DIR", str(cache))
    args = ["train", "--task", "audio", "--model", "aclnet", "--data", "synth-sounds", "--epochs", "1"]
    args += ["--option", "per_class=5", "--cfg", "llf_channels=(4, 16)", "--cfg", "width=0.25", "--batch-size", "8"]
    assert main([*args, "--no-progress", "--out", str(out)]) == 0
    yield out
    patch.undo()


def test_train_records_an_audio_checkpoint(run):
    saved = json.loads((run / "checkpoint" / "checkpoint.json").read_text())
    arch = saved["architecture"]
    assert arch["task"] == "audio" and arch["classes"] == 10 and arch["sample_rate"] == 16000
    assert arch["samples"] == 16000 and arch["cfg"] == {"llf_channels": [4, 16], "width": 0.25}
    assert 0.0 <= json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["test_acc"] <= 1.0


def test_predict_audio_prints_the_top_3_classes_of_wav_files(run, tmp_path, capsys):
    paths = []
    for index in (0, 6):
        wave, _ = synth_clip(index, seed=7)
        path = tmp_path / f"clip{index}.wav"
        soundfile.write(str(path), wave[:12000], 16000)  # shorter than a second: padded
        paths.append(str(path))
    assert main(["predict-audio", str(run / "checkpoint"), *paths, "--top-k", "3"]) == 0
    out = capsys.readouterr().out
    for path in paths:
        line = next(row for row in out.splitlines() if path in row)
        found = re.findall(r"(\w+) (\d\.\d{3})", line)
        assert len(found) == 3 and all(name in CLASSES for name, _ in found)


def test_eval_scores_the_audio_checkpoint(run, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path))
    assert main(["eval", str(run / "checkpoint")]) == 0
    assert "synth-sounds" in capsys.readouterr().out


def test_usage_errors_exit_2_with_one_line(run, tmp_path, capsys):
    path = tmp_path / "slow.wav"
    soundfile.write(str(path), np.zeros(800, dtype=np.float32), 8000)
    assert main(["predict-audio", str(run / "checkpoint"), str(path)]) == 2
    assert "sampled at 8000 Hz, expected 16000 Hz" in capsys.readouterr().err
    assert main(["predict-audio", str(run / "checkpoint"), str(tmp_path / "none.wav")]) == 2
    assert "no sound file" in capsys.readouterr().err
    assert main(["train", "--task", "audio", "--model", "resnet20", "--out", str(tmp_path / "x")]) == 2
    assert "task 'audio' trains audio models" in capsys.readouterr().err
    sized = ["--option", "per_class=5", "--out", str(tmp_path)]
    assert main(["train", "--task", "audio", "--model", "aclnet", "--data", "digits", *sized]) == 2
    assert "per_class sizes synth-sounds only" in capsys.readouterr().err
