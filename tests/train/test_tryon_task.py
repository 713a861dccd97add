"""The tryon task (Re-CatVTON, S97, on digits): same-class pairs, the person-half test errors against a direct
reference, and a short run through the trainer."""

from __future__ import annotations

import pytest
import torch

import convzoo.train.tasks.tryon as tryon
from convzoo.data.base import DatasetInfo, TensorImageDataset, load_dataset
from convzoo.train import TrainConfig, train
from convzoo.train.checkpoint import build_from_checkpoint
from convzoo.train.diffusion import GaussianDiffusion
from convzoo.train.task import get_task
from convzoo.train.tasks.tryon import EVAL_SEED, GarmentPairs, score_tryon

SMALL = {"backbone_cfg": (("hidden_size", 8), ("depth", (1, 1, 1, 1, 1)))}


def test_pairs_are_other_images_of_the_same_class():
    labels = torch.tensor([0, 1, 0, 2, 1, 0, 1])
    images = torch.arange(7.0).view(7, 1, 1, 1)
    info = DatasetInfo("t", "train", 3, 1, (1, 1), (), (0.0,), (1.0,))
    pairs = GarmentPairs(images, labels, info, seed=0)
    for i in range(7):
        person, garment = pairs[i]
        j = int(garment.item())
        assert person.item() == i and labels[j] == labels[i]
        assert j != i or (labels == labels[i]).sum() == 1  # itself only when alone in its class
    assert sorted(pairs.partner.tolist()) == list(range(7))  # every image is some pair's garment once


class _Half(torch.nn.Module):
    """Predicts the input scaled by 0.5: the garment half of the input reaches nothing of the person half."""

    def forward(self, x, t, labels):
        return 0.5 * x


def test_scores_equal_a_direct_reference():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(5, 1, 4, 4, generator=g) * 2 - 1
    info = DatasetInfo("t", "test", 2, 1, (4, 4), (), (0.0,), (1.0,))
    pairs = GarmentPairs(images, torch.tensor([0, 0, 1, 1, 1]), info, seed=1)
    metrics = score_tryon(_Half(), pairs, timesteps=10)
    diffusion = GaussianDiffusion(10)
    draw = torch.Generator().manual_seed(EVAL_SEED)
    t = torch.randint(0, 10, (5,), generator=draw)
    noise = torch.randn(5, 1, 4, 4, generator=draw)
    expected = 0.0
    for i in range(5):  # the person half of 0.5·x is 0.5·x_p, whatever the garment
        x_p = diffusion.q_sample(images[i : i + 1], t[i : i + 1], noise[i : i + 1])
        expected += ((0.5 * x_p - noise[i]) ** 2).mean().item() / 5
    assert metrics["loss"] == pytest.approx(expected, rel=1e-5)
    assert metrics["loss_null"] == pytest.approx(expected, rel=1e-5) and metrics["garment_gain"] == pytest.approx(0)


def test_train_through_the_trainer_and_rebuild(tmp_path, monkeypatch):
    def few(name, split, root=None):
        data = load_dataset(name, split, root)
        return TensorImageDataset(data.images[:48], data.labels[:48], data.info)

    monkeypatch.setattr(tryon, "load_dataset", few)
    config = TrainConfig(
        model="re_catvton_dic_s", task="tryon", data="digits", epochs=1, batch_size=16, cfg=dict(SMALL),
        options={"timesteps": 50}, out=str(tmp_path), progress=False,
    )  # fmt: skip
    record = train(config).history[-1]
    assert {"test_loss", "test_loss_null", "test_garment_gain"} <= set(record)
    model, checkpoint = build_from_checkpoint(str(tmp_path / "checkpoint"))
    task = get_task("tryon")
    test_set = task.load("digits", "test", None, task.resolve_options({"timesteps": 50}))
    assert score_tryon(model.eval(), test_set, 50)["loss"] == pytest.approx(record["test_loss"], rel=1e-4)
