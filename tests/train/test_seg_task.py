"""The seg task: mIoU and pixel accuracy against a confusion-matrix reference, training through the trainer,
checkpoints rebuilt by their task, and ``convzoo segment`` writing a coloured mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix
from torch import nn

import convzoo.data.shapes as shapes
from convzoo.data.base import DatasetInfo
from convzoo.data.dense import SegmentationDataset
from convzoo.train import TrainConfig, train
from convzoo.train.checkpoint import build_from_checkpoint
from convzoo.train.tasks.seg import score_segmentation


class _Oracle(nn.Module):
    """Logits that pick the label stored in the image's first channel."""

    def forward(self, x):
        return F.one_hot(x[:, 0].long(), 5).permute(0, 3, 1, 2).float()


def test_miou_and_pixel_accuracy_equal_a_confusion_matrix_reference():
    g = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 5, (7, 9, 11), generator=g)
    truth[torch.rand(truth.shape, generator=g) < 0.1] = 255
    predicted = torch.where(
        torch.rand(truth.shape, generator=g) < 0.6, truth.clamp(max=4), torch.randint(0, 5, truth.shape, generator=g)
    )
    images = predicted[:, None].float().repeat(1, 3, 1, 1)
    info = DatasetInfo("t", "test", 5, 3, (9, 11), (), (0.0,) * 3, (1.0,) * 3, extra={"ignore_index": 255})
    metrics = score_segmentation(_Oracle(), SegmentationDataset(images, truth, info), 5, 255)
    keep = truth.flatten() != 255
    cm = confusion_matrix(truth.flatten()[keep].numpy(), predicted.flatten()[keep].numpy(), labels=range(5))
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    assert metrics["miou"] == pytest.approx(np.mean(np.diag(cm)[union > 0] / union[union > 0]), abs=1e-6)
    assert metrics["pixel_acc"] == pytest.approx(np.trace(cm) / cm.sum(), abs=1e-6)


@pytest.fixture
def small_shapes(monkeypatch):
    monkeypatch.setattr(shapes, "LENGTHS", {"train": 24, "test": 8})
    shapes._rendered.cache_clear()
    yield
    shapes._rendered.cache_clear()


def test_train_seg_then_rebuild(tmp_path, small_shapes):
    config = TrainConfig(
        model="fcn8s", task="seg", data="shapes", epochs=1, batch_size=8, cfg={"backbone": "resnet20"},
        op="shift", out=str(tmp_path / "run"), progress=False,
    )  # fmt: skip
    result = train(config)
    record = result.history[-1]
    assert {"test_miou", "test_pixel_acc", "train_pixel_acc"} <= set(record)
    assert 0 <= record["test_miou"] <= 1
    model, saved = build_from_checkpoint(result.checkpoint)
    assert saved.architecture["op"] == "shift" and saved.architecture["cfg"] == {"backbone": "resnet20"}
    x = torch.randn(1, 3, 37, 29)
    result.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), result.model(x))


def test_seg_task_refuses_other_models_and_data(tmp_path, small_shapes):
    with pytest.raises(ValueError, match="is a classify model; task 'seg' trains seg models"):
        train(TrainConfig(model="resnet20", task="seg", data="shapes", out=str(tmp_path), progress=False))
    with pytest.raises(ValueError, match="'digits' is not a segmentation set"):
        train(TrainConfig(model="fcn8s", task="seg", data="digits", out=str(tmp_path), progress=False))
    with pytest.raises(ValueError, match="takes no option 'scale'"):
        TrainConfig(model="fcn8s", task="seg", options={"scale": 2})


def test_seg_options_draw_more_shapes_and_refuse_what_they_cannot_do():
    from convzoo.train.task import get_task

    task = get_task("seg")
    more = task.load("shapes", "train", None, task.resolve_options({"train_length": 20}))
    assert len(more) == 20
    with pytest.raises(ValueError, match=r"'voc' is read from disk and takes no train_length option"):
        task.load("voc", "train", "/nowhere", task.resolve_options({"train_length": 20}))
    with pytest.raises(ValueError, match=r"augment option must be one of 'none', 'dihedral', got 'flip'"):
        task.resolve_options({"augment": "flip"})
    options = task.resolve_options({"size": 24, "train_length": 5})
    train, test = (task.load("shapes", split, None, options) for split in ("train", "test"))
    assert (len(train), len(test)) == (5, 192)
    assert train[0][0].shape == test[0][0].shape == (3, 24, 24) and test[0][1].shape == (24, 24)
    with pytest.raises(ValueError, match=r"size option"):
        task.resolve_options({"size": -1})
