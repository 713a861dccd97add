"""The sci task (S104): its clips and snapshots, the PSNR against a hand value, a short run through the trainer, and
(slow) that training raises the reconstruction PSNR."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo.registry import TASKS
from convzoo.train import TrainConfig, train
from convzoo.train.checkpoint import build_from_checkpoint
from convzoo.train.sci import random_masks, snapshot, video_psnr
from convzoo.train.task import get_task
from convzoo.train.tasks.sci import score_sci

TINY = {"channels": 8, "depths": (1,), "heads": 2, "refine": 1}


def test_video_psnr_equals_hand_values():
    target = torch.full((1, 2, 4, 4), 0.1, dtype=torch.float64)
    estimate = torch.zeros_like(target)
    estimate[0, 1] = 0.1 + 0.001  # frame 0: MSE 0.01 → 20 dB; frame 1: MSE 1e-6 → 60 dB
    torch.testing.assert_close(video_psnr(estimate, target), torch.tensor([[20.0, 60.0]], dtype=torch.float64))
    with pytest.raises(ValueError, match="differ"):
        video_psnr(estimate[:, :1], target)


def test_clips_masks_and_snapshots():
    task = get_task("sci")
    assert TASKS.get("sci").papers == ("video-sci",) and task.primary == "psnr" and task.higher_is_better
    options = task.resolve_options({"clips": 6, "test_clips": 3, "size": 24, "frames": 4})
    train_set, test_set = (task.load("digits", split, None, options) for split in ("train", "test"))
    y, masks, x = train_set[2]
    assert y.shape == (24, 24) and masks.shape == x.shape == (4, 24, 24) and len(test_set) == 3
    assert torch.equal(masks, random_masks(4, 24, 24, seed=0))
    torch.testing.assert_close(y, snapshot(x.unsqueeze(0), masks)[0])
    assert x.min() >= 0 and x.max() <= 1 and not torch.equal(test_set[0][2], train_set[0][2])
    again = task.load("digits", "train", None, options)
    assert torch.equal(again.videos, train_set.videos)  # seeded
    with pytest.raises(ValueError, match="made from the digits"):
        task.load("cifar10", "train", None, options)
    with pytest.raises(ValueError, match="size must be"):
        task.resolve_options({"size": 17})
    with pytest.raises(ValueError, match="takes no option"):
        task.resolve_options({"scale": 2})


def test_train_through_the_trainer_and_rebuild(tmp_path):
    config = TrainConfig(
        model="ctm_sci_tiny", task="sci", data="digits", epochs=1, batch_size=4, cfg=dict(TINY),
        options={"clips": 8, "test_clips": 4, "size": 16}, out=str(tmp_path), progress=False,
    )  # fmt: skip
    result = train(config)
    record = result.history[-1]
    assert {"test_psnr", "test_psnr_least_norm", "test_psnr_gain"} <= set(record)
    assert math.isfinite(record["test_psnr"]) and record["test_psnr_gain"] == pytest.approx(
        record["test_psnr"] - record["test_psnr_least_norm"]
    )
    model, checkpoint = build_from_checkpoint(str(tmp_path / "checkpoint"))
    test_set = get_task("sci").load("digits", "test", None, get_task("sci").resolve_options(config.options))
    assert score_sci(model.eval(), test_set)["psnr"] == pytest.approx(record["test_psnr"], abs=1e-4)


@pytest.mark.slow
def test_training_raises_the_reconstruction_psnr(tmp_path):
    options, cfg = {"clips": 64, "test_clips": 16, "size": 32}, {"channels": 16, "refine": 1}
    config = TrainConfig(
        model="ctm_sci_tiny", task="sci", data="digits", epochs=3, batch_size=4, lr=3e-3, cfg=cfg,
        options=options, out=str(tmp_path), progress=False, seed=0,
    )  # fmt: skip
    task = get_task("sci")
    test_set = task.load("digits", "test", None, task.resolve_options(options))
    torch.manual_seed(0)  # the trainer's seed before it builds the model: the same initial weights
    fresh = task.create({"model": "ctm_sci_tiny", "frames": 8, "size": 32, "cfg": cfg}).eval()
    before = score_sci(fresh, test_set)["psnr"]
    history = train(config).history
    assert history[0]["test_psnr"] > before and history[-1]["test_psnr"] > before + 1.0, (before, history)
