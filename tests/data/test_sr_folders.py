"""SR benchmark folders (DIV2K, Set5/Set14/BSD100/Urban100 layout): pairs, bicubic LR, clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo.data import load_dataset
from convzoo.data.sr_photos import downscale


def _png(path, width, height, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255


def test_a_benchmark_set_without_lr_files_is_downscaled_from_hr_cropped_to_the_scale(tmp_path):
    hr = _png(tmp_path / "HR" / "baby.png", 31, 22)
    _png(tmp_path / "HR" / "bird.png", 16, 16, seed=1)
    test = load_dataset("sr-benchmark", "test", tmp_path, scale=3)
    assert len(test) == 2 and test.info.extra == {"scale": 3}
    lr, cropped = test[0]
    torch.testing.assert_close(cropped, hr[:, :21, :30])
    torch.testing.assert_close(lr, downscale(hr[None, :, :21, :30], 3)[0])


def test_given_lr_files_are_used_and_must_fit(tmp_path):
    _png(tmp_path / "HR" / "baby.png", 32, 24)
    given = _png(tmp_path / "LR_bicubic" / "X2" / "babyx2.png", 16, 12, seed=5)
    lr, hr = load_dataset("sr-benchmark", "test", tmp_path, scale=2)[0]
    torch.testing.assert_close(lr, given)
    assert hr.shape == (3, 24, 32)
    _png(tmp_path / "LR_bicubic" / "X2" / "babyx2.png", 15, 12)
    with pytest.raises(ValueError, match=r"babyx2.png' is 15×12 but its HR image baby.png \(32×24.*needs 16×12"):
        load_dataset("sr-benchmark", "test", tmp_path, scale=2)[0]
    _png(tmp_path / "HR" / "bird.png", 32, 24)
    with pytest.raises(FileNotFoundError, match=r"bird.png' has no LR image birdx2"):
        load_dataset("sr-benchmark", "test", tmp_path, scale=2)


def test_div2k_trains_on_random_crops_and_tests_on_whole_valid_images(tmp_path):
    for i in range(2):
        _png(tmp_path / "DIV2K_train_HR" / f"000{i}.png", 64, 48, seed=i)
    _png(tmp_path / "DIV2K_valid_HR" / "0801.png", 40, 30)
    train = load_dataset("div2k", "train", tmp_path, scale=4, patch=24, samples=10)
    assert len(train) == 10 and all(lr.shape == (3, 6, 6) and hr.shape == (3, 24, 24) for lr, hr in train)
    lr, hr = train[3]
    torch.testing.assert_close(lr, downscale(hr[None], 4)[0], atol=0.2, rtol=0)  # a crop of the image's own LR
    test = load_dataset("div2k", "test", tmp_path, scale=4)
    assert len(test) == 1 and test[0][1].shape == (3, 28, 40)


def test_missing_and_malformed_folders_name_the_layout(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"div2k: missing folder .*DIV2K_train_HR.*expected layout"):
        load_dataset("div2k", "train", tmp_path)
    with pytest.raises(ValueError, match="sr-benchmark: needs a data folder"):
        load_dataset("sr-benchmark", "test")
    (tmp_path / "HR").mkdir()
    with pytest.raises(ValueError, match="holds no images"):
        load_dataset("sr-benchmark", "test", tmp_path)
    (tmp_path / "HR" / "x.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"cannot read .*x.png' as an image"):
        load_dataset("sr-benchmark", "test", tmp_path)[0]
    with pytest.raises(ValueError, match="is a test set"):
        load_dataset("sr-benchmark", "train", tmp_path)
    with pytest.raises(ValueError, match="scale must be one of 2, 3, 4, got 5"):
        load_dataset("div2k", "train", tmp_path, scale=5)


def test_an_sr_checkpoint_is_scored_on_a_benchmark_folder(tmp_path):
    from convzoo.train import TrainConfig, evaluate_checkpoint, train

    _png(tmp_path / "set" / "HR" / "a.png", 40, 36)
    _png(tmp_path / "set" / "HR" / "b.png", 30, 24, seed=2)
    options = {"scale": 2, "patch": 48, "sampler": "uniform", "samples": 16}
    train(TrainConfig(task="sr", model="espcn", options=options, epochs=1, out=str(tmp_path / "run"), progress=False))
    scored = evaluate_checkpoint(tmp_path / "run" / "checkpoint", "sr-benchmark", tmp_path / "set")
    assert scored.images == 2 and {"psnr", "ssim", "psnr_bicubic"} <= set(scored.metrics)
