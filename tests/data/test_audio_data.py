"""synth-sounds (seeded, cached atomically, balanced, events where they were put) and the ESC-50 / Speech Commands
folder loaders (tiny WAV trees: layouts read, and missing folders, bad rates and unreadable files refused)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convzoo.data import load_dataset
from convzoo.data.synth_sounds import CLASSES, synth_cache_path, synth_clip, synth_clips

soundfile = pytest.importorskip("soundfile", reason="soundfile (the audio extra) is not installed")


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_clips_are_seeded_bounded_and_balanced():
    waves, labels = synth_clips(20)
    again, _ = synth_clips(20)
    assert waves.shape == (20, 16000) and np.array_equal(waves, again)
    assert np.abs(waves).max() <= 10 ** (-3 / 20) + 1e-6
    assert labels.tolist() == [i % len(CLASSES) for i in range(20)]
    assert not np.array_equal(synth_clip(3, seed=1)[0], waves[3])


def test_a_tone_clip_has_its_energy_in_one_narrow_band():
    wave, label = synth_clip(0)  # class 0: tone
    assert CLASSES[label] == "tone"
    spectrum = np.abs(np.fft.rfft(wave)) ** 2
    peak = spectrum.argmax()
    assert spectrum[max(peak - 20, 0) : peak + 20].sum() > 0.5 * spectrum.sum()


def test_the_set_is_made_once_cached_atomically_and_split_80_20(cache):
    train = load_dataset("synth-sounds", "train", per_class=5)
    test = load_dataset("synth-sounds", "test", per_class=5)
    path = synth_cache_path(5)
    assert path.is_file() and not list(path.parent.glob(".*.tmp"))  # no temporary file left behind
    assert len(train) == 40 and len(test) == 10 and train.waveforms.shape == (40, 1, 16000)
    assert torch.bincount(test.labels).tolist() == [1] * 10
    waves, _ = synth_clips(50)
    np.testing.assert_allclose(train.waveforms[:10, 0].numpy(), waves[:10], atol=1 / 32767)  # int16 cache
    assert train.info.extra["sample_rate"] == 16000 and train.info.image_size == (16000,)


def write_wav(path, rate=16000, seconds=0.5, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(0).uniform(-0.5, 0.5, (int(rate * seconds), channels)).astype(np.float32)
    soundfile.write(str(path), data, rate, subtype="PCM_16")


def speech_tree(root):
    for word in ("no", "yes"):
        for i in range(3):
            write_wav(root / word / f"abc{i}_nohash_0.wav")
    write_wav(root / "_background_noise_" / "noise.wav")
    (root / "testing_list.txt").write_text("yes/abc0_nohash_0.wav\nno/abc0_nohash_0.wav\n")
    (root / "validation_list.txt").write_text("yes/abc1_nohash_0.wav\n")


def test_speech_commands_layout_is_read(tmp_path):
    speech_tree(tmp_path)
    train = load_dataset("speech-commands", "train", tmp_path)
    test = load_dataset("speech-commands", "test", tmp_path)
    assert train.info.class_names == ("no", "yes") and len(train) == 3 and len(test) == 2
    assert train.waveforms.shape == (3, 1, 16000) and (train.waveforms[:, :, 8000:] == 0).all()  # padded


def test_esc50_layout_is_read_and_stereo_is_mixed(tmp_path):
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for i, (fold, target, name) in enumerate([(1, 0, "dog"), (5, 1, "rain"), (2, 1, "rain")]):
        write_wav(tmp_path / "audio" / f"{fold}-{i}-A-{target}.wav", rate=44100, seconds=0.1, channels=2)
        rows.append(f"{fold}-{i}-A-{target}.wav,{fold},{target},{name},False,x,A")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    train, test = load_dataset("esc50", "train", tmp_path), load_dataset("esc50", "test", tmp_path)
    assert len(train) == 2 and len(test) == 1 and test.labels.tolist() == [1]
    assert train.info.class_names == ("dog", "rain") and train.waveforms.shape == (2, 1, 5 * 44100)
    assert train.info.extra["sample_rate"] == 44100


def test_missing_folders_bad_rates_and_unreadable_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_dataset("speech-commands", "train", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="testing_list.txt"):
        load_dataset("speech-commands", "train", tmp_path)
    with pytest.raises(FileNotFoundError, match="esc50.csv"):
        load_dataset("esc50", "train", tmp_path)
    speech_tree(tmp_path)
    write_wav(tmp_path / "yes" / "abc9_nohash_0.wav", rate=8000)
    with pytest.raises(ValueError, match="sampled at 8000 Hz, expected 16000 Hz"):
        load_dataset("speech-commands", "train", tmp_path)
    (tmp_path / "yes" / "abc9_nohash_0.wav").write_bytes(b"RIFF not really a wav")
    with pytest.raises(ValueError, match="cannot read .* as audio"):
        load_dataset("speech-commands", "train", tmp_path)
    with pytest.raises(ValueError, match="synth-sounds: is generated"):
        load_dataset("synth-sounds", "train", tmp_path)
