"""Datasets: digits split and shapes, CIFAR pickle layout, imagefolder, sr-photos pairs, and clear path errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from convzoo.data import load_dataset
from convzoo.data.sr_photos import TEST_IMAGES, TRAIN_IMAGES


def test_digits_split_is_fixed_stratified_and_standardised():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 450
    assert train.images.shape[1:] == (1, 32, 32) and train.info.num_classes == 10
    counts = torch.bincount(test.labels, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47  # 25% of 174..183 per class
    assert abs(train.images.mean().item()) < 1e-4 and abs(train.images.std().item() - 1) < 1e-2
    again = load_dataset("digits", "test")
    assert torch.equal(again.labels, test.labels)


def test_digits_takes_no_root():
    with pytest.raises(ValueError, match=r"digits: is bundled with scikit-learn and takes no data folder"):
        load_dataset("digits", root="/tmp")


def _write_cifar10(folder, per_batch=4):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, size=per_batch))
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)


def test_cifar10_pickle_layout(tmp_path):
    _write_cifar10(tmp_path)
    train = load_dataset("cifar10", "train", root=tmp_path)
    test = load_dataset("cifar10", "test", root=tmp_path)
    assert len(train) == 20 and len(test) == 4 and train.images.shape[1:] == (3, 32, 32)
    assert train.info.class_names[3] == "c3"
    with open(tmp_path / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    # the first 1024 values of a row are the red plane, row-major: undo the standardisation and compare
    red = test.images[0, 0] * train.info.std[0] + train.info.mean[0]
    expected = torch.tensor(raw[b"data"][0][:1024], dtype=torch.float32).view(32, 32) / 255
    torch.testing.assert_close(red, expected, rtol=0, atol=1e-5)


def test_cifar_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar10: .* is not a folder; expected layout: ROOT/data_batch_1"):
        load_dataset("cifar10", root=tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match=r"cifar100: missing .*train.*expected layout: ROOT/train, ROOT/test"):
        load_dataset("cifar100", root=tmp_path)
    _write_cifar10(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=r"cifar10: .*data_batch_3.* is not a CIFAR pickle"):
        load_dataset("cifar10", root=tmp_path)
    with pytest.raises(ValueError, match=r"cifar10: needs a data folder"):
        load_dataset("cifar10")


def _write_images(folder, classes=("cat", "dog"), per_class=5):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in classes:
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(folder / c / f"{i}.png")


def test_imagefolder_split_by_seed_and_by_folders(tmp_path):
    _write_images(tmp_path / "flat")
    train = load_dataset("imagefolder", "train", root=tmp_path / "flat", size=16)
    test = load_dataset("imagefolder", "test", root=tmp_path / "flat", size=16)
    assert len(train) == 8 and len(test) == 2 and train.images.shape[1:] == (3, 16, 16)
    assert train.info.class_names == ("cat", "dog")
    _write_images(tmp_path / "split" / "train")
    _write_images(tmp_path / "split" / "test", per_class=2)
    assert len(load_dataset("imagefolder", "test", root=tmp_path / "split")) == 4


def test_imagefolder_errors(tmp_path):
    (tmp_path / "only").mkdir()
    with pytest.raises(ValueError, match=r"imagefolder: .* needs at least 2 class folders with images"):
        load_dataset("imagefolder", root=tmp_path)
    _write_images(tmp_path / "bad")
    (tmp_path / "bad" / "cat" / "broken.png").write_bytes(b"xx")
    with pytest.raises(ValueError, match=r"imagefolder: cannot read .*broken.png"):
        load_dataset("imagefolder", root=tmp_path / "bad")


def test_sr_photos_pairs_and_held_out_images():
    import skimage.data

    assert not set(TRAIN_IMAGES) & set(TEST_IMAGES)
    for scale in (2, 3, 4):
        data = load_dataset("sr-photos", "train", scale=scale)
        lr, hr = data[0]
        assert hr.shape == (3, 96, 96) and lr.shape == (3, 96 // scale, 96 // scale)
        # the LR patch is the HR patch downscaled by bicubic interpolation, independently recomputed here
        expected = torch.nn.functional.interpolate(
            hr[None], scale_factor=1 / scale, mode="bicubic", antialias=True, align_corners=False
        ).clamp(0, 1)[0]
        torch.testing.assert_close(lr, expected, rtol=0, atol=1e-5)
        # the test split: the held-out photographs whole, cropped at the bottom right to multiples of 12
        test = load_dataset("sr-photos", "test", scale=scale)
        assert len(test) == len(TEST_IMAGES)
        for (lr, hr), name in zip(test, TEST_IMAGES, strict=True):
            photo = torch.from_numpy(getattr(skimage.data, name)()).permute(2, 0, 1).float() / 255
            h, w = (side // 12 * 12 for side in photo.shape[-2:])
            assert hr.shape == (3, h, w) and photo.shape[-2] - h < 12 and photo.shape[-1] - w < 12
            torch.testing.assert_close(hr, photo[:, :h, :w], rtol=0, atol=0)
            assert lr.shape == (3, h // scale, w // scale)
    with pytest.raises(ValueError, match=r"sr-photos: scale must be one of \(2, 3, 4\), got 5"):
        load_dataset("sr-photos", scale=5)
    with pytest.raises(ValueError, match=r"sr-photos: split must be one of train, test, got 'val'"):
        load_dataset("sr-photos", "val")


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match=r"unknown dataset 'digit'; did you mean 'digits'"):
        load_dataset("digit")
    with pytest.raises(ValueError, match=r"digits: split must be one of train, test, got 'val'"):
        load_dataset("digits", "val")
