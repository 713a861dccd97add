"""The sr task: L1 training through the one trainer, PSNR/SSIM on Y against bicubic, checkpoints that rebuild."""

import pytest
import torch

from convzoo.data.sr_metrics import bicubic_upscale, psnr_y
from convzoo.train import TrainConfig, build_from_checkpoint, evaluate_checkpoint, train
from convzoo.train.tasks.sr import score_sr


class Bicubic(torch.nn.Module):
    scale = 2

    def forward(self, x):
        return bicubic_upscale(x, 2)


def test_bicubic_scores_exactly_its_own_baseline():
    from convzoo.data.base import load_dataset

    test = load_dataset("sr-photos", "test", scale=2, patch=48)
    metrics = score_sr(Bicubic(), test, 2)
    assert metrics["psnr"] == pytest.approx(metrics["psnr_bicubic"]) and metrics["psnr_gain"] == pytest.approx(0)
    # the mean over images equals the metric of each pair averaged by hand
    per_image = [psnr_y(bicubic_upscale(lr[None], 2), hr[None], 2) for lr, hr in test]
    assert metrics["psnr"] == pytest.approx(sum(per_image) / len(per_image))


def test_espcn_trains_checkpoints_and_evaluates_through_its_task(tmp_path):
    config = TrainConfig(
        task="sr",
        model="espcn",
        data="sr-photos",
        options={"scale": 2, "patch": 96, "sampler": "samplingaug", "samples": 96},
        epochs=2,
        batch_size=16,
        out=str(tmp_path),
        progress=False,
        lr=2e-3,
    )
    result = train(config)
    record = result.history[-1]
    assert {"test_psnr", "test_ssim", "test_psnr_bicubic", "test_psnr_gain", "train_loss"} <= set(record)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    model, checkpoint = build_from_checkpoint(tmp_path / "checkpoint")
    assert checkpoint.task == "sr" and checkpoint.describe() == "espcn ×2 (sr)"
    x = torch.rand(1, 3, 20, 24)
    torch.testing.assert_close(model(x), result.model.eval()(x))
    scored = evaluate_checkpoint(tmp_path / "checkpoint")
    assert scored.task == "sr" and scored.metrics["psnr"] == pytest.approx(record["test_psnr"], abs=1e-6)
    assert scored.images == 2  # the held-out photographs, whole


def test_a_resumed_sr_run_equals_an_uninterrupted_one(tmp_path):
    options = {"scale": 3, "patch": 96, "sampler": "uniform", "samples": 64}
    common = dict(task="sr", model="espcn", options=options, batch_size=32, progress=False)
    straight = train(TrainConfig(epochs=2, out=str(tmp_path / "a"), **common))
    train(TrainConfig(epochs=2, out=str(tmp_path / "b"), **common), on_epoch_end=lambda record: False)
    resumed = train(TrainConfig(epochs=2, out=str(tmp_path / "b"), **common), resume=True)
    assert [h["test_psnr"] for h in straight.history] == [h["test_psnr"] for h in resumed.history]
    with pytest.raises(ValueError, match=r"trained with options=\{.*'scale': 3"):
        train(
            TrainConfig(epochs=3, out=str(tmp_path / "b"), **{**common, "options": {**options, "scale": 2}}),
            resume=True,
        )


def test_samplingaug_is_the_training_sampler_on_request(tmp_path):
    config = TrainConfig(
        task="sr",
        model="espcn",
        options={"scale": 2, "patch": 48, "sampler": "samplingaug", "samples": 64},
        epochs=1,
        batch_size=32,
        progress=False,
    )
    result = train(config)
    assert result.history[0]["step"] == 2  # 64 importance-sampled pairs, batches of 32
    assert TrainConfig(task="sr", model="espcn").data == "sr-photos"  # the task's embedded default
    with pytest.raises(ValueError, match="draws from the sr-photos images, not 'digits'"):
        train(TrainConfig(task="sr", model="espcn", data="digits", options={"sampler": "uniform"}, progress=False))


def test_the_bicubic_baseline_given_once_equals_the_one_scored_beside_the_model():
    from convzoo.data.base import load_dataset
    from convzoo.models import create_model

    test = load_dataset("sr-photos", "test", scale=2, patch=96)
    model = create_model("espcn", scale=2).eval()
    fresh = score_sr(model, test, 2)
    baseline = score_sr(Bicubic(), test, 2)
    reused = score_sr(model, test, 2, bicubic={"psnr": baseline["psnr"], "ssim": baseline["ssim"]})
    assert reused == pytest.approx(fresh)
