"""The disparity task: end-point error against a direct reference, training EDNet through the trainer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import convzoo.data.stereo as stereo
from convzoo.data.base import DatasetInfo
from convzoo.data.dense import StereoDataset
from convzoo.train import TrainConfig, train
from convzoo.train.checkpoint import build_from_checkpoint
from convzoo.train.tasks.disparity import score_disparity


class _Fixed(nn.Module):
    def __init__(self, prediction):
        super().__init__()
        self.prediction = prediction

    def forward(self, left, right):
        return self.prediction[: left.shape[0]]


def test_epe_and_3px_error_equal_a_direct_reference():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(3, 5, 6, generator=g) * 20
    truth[0, 0, 0] = float("nan")
    truth[1, 1, 1] = 25.0  # beyond max_disparity: not scored
    prediction = truth.nan_to_num(0) + torch.randn(3, 5, 6, generator=g) * 3
    info = DatasetInfo("t", "test", 0, 3, (5, 6), (), (0.0,) * 3, (1.0,) * 3, extra={"max_disparity": 24})
    data = StereoDataset(torch.zeros(3, 3, 5, 6), torch.zeros(3, 3, 5, 6), truth, info)
    metrics = score_disparity(_Fixed(prediction), data, 24)
    errors = [abs(float(prediction[i, y, x] - truth[i, y, x])) for i in range(3) for y in range(5) for x in range(6)
              if truth[i, y, x] == truth[i, y, x] and truth[i, y, x] < 24]  # fmt: skip
    assert len(errors) == 88
    assert metrics["epe"] == pytest.approx(sum(errors) / len(errors), rel=1e-5)
    assert metrics["d3"] == pytest.approx(sum(e > 3 for e in errors) / len(errors))


def test_train_ednet_on_random_dots(tmp_path, monkeypatch):
    monkeypatch.setattr(stereo, "LENGTHS", {"train": 8, "test": 4})
    stereo._random_dots.cache_clear()
    config = TrainConfig(
        model="ednet", task="disparity", data="random-dots", epochs=1, batch_size=4, cfg={"width": 8},
        out=str(tmp_path), progress=False,
    )  # fmt: skip
    result = train(config)
    assert {"test_epe", "test_d3", "train_epe"} <= set(result.history[-1])
    model, saved = build_from_checkpoint(result.checkpoint)
    assert saved.architecture["max_disparity"] == 16
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        assert torch.equal(model(x, x), result.model.eval()(x, x))
    stereo._random_dots.cache_clear()
    with pytest.raises(ValueError, match="'digits' is not a stereo set"):
        train(TrainConfig(model="ednet", task="disparity", data="digits", out=str(tmp_path / "b"), progress=False))
