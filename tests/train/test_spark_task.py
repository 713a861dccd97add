"""Tasks spark and spark-finetune (S81): a pretraining step lowers nothing it should not touch (labels unused),
the test loss uses fixed masks, a spark checkpoint's encoder seeds the classifier exactly (head fresh), the
fine-tuned checkpoint rebuilds without the pretraining one, errors; and (slow) pretraining then fine-tuning on
digits through ``convzoo train``."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import Subset

from convzoo.cli import main
from convzoo.data.base import load_dataset
from convzoo.models.spark import SparK
from convzoo.train.checkpoint import build_from_checkpoint, save_checkpoint
from convzoo.train.task import get_task
from convzoo.train.trainer import TrainConfig


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "test", None)


def _pretrained(tmp_path, digits):
    task = get_task("spark")
    config = TrainConfig(task="spark", model="resnet20", data="digits")
    architecture = {"task": "spark", **task.architecture(config, digits.info)}
    torch.manual_seed(0)
    model = task.create(architecture)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    images = torch.stack([digits[i][0] for i in range(8)])
    task.step(model, (images, torch.zeros(8, dtype=torch.long)), config)[0].backward()
    optimizer.step()  # the encoder now differs from any fresh initialisation
    return save_checkpoint(tmp_path / "pre", model, json.loads(json.dumps(architecture))), model


def test_pretraining_step_and_fixed_mask_test_loss(digits):
    task = get_task("spark")
    config = TrainConfig(task="spark", model="resnet20", data="digits", options={"mask_ratio": 0.75})
    model = task.create(task.architecture(config, digits.info))
    assert isinstance(model, SparK) and model.mask_ratio == 0.75 and config.optimizer == "adamw"
    images = torch.stack([digits[i][0] for i in range(8)])
    loss, sums = task.step(model, (images, torch.zeros(8, dtype=torch.long)), config)
    assert loss.requires_grad and sums["seen"] == 8
    model.eval()
    few = Subset(digits, range(16))
    assert task.evaluate(model, few, torch.device("cpu")) == task.evaluate(model, few, torch.device("cpu"))


def test_finetune_starts_from_the_pretrained_encoder(tmp_path, digits):
    folder, pretrained = _pretrained(tmp_path, digits)
    task = get_task("spark-finetune")
    config = TrainConfig(task="spark-finetune", model="resnet20", data="digits", options={"init": str(folder)})
    architecture = task.architecture(config, digits.info)
    model = task.create(architecture)
    encoder = pretrained.encoder_state_dict()
    for name, value in model.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(value, encoder[name]), name
    save_checkpoint(tmp_path / "ft", model, {"task": "spark-finetune", **architecture})
    rebuilt, _ = build_from_checkpoint(tmp_path / "ft")  # a fresh task instance: no pretraining checkpoint read
    assert torch.equal(rebuilt.head.fc.weight, model.head.fc.weight)


def test_errors(tmp_path, digits):
    task = get_task("spark-finetune")
    with pytest.raises(ValueError, match="needs --option init="):
        task.architecture(TrainConfig(task="spark-finetune", model="resnet20", data="digits"), digits.info)
    folder, _ = _pretrained(tmp_path, digits)
    other = TrainConfig(task="spark-finetune", model="resnet32", data="digits", options={"init": str(folder)})
    with pytest.raises(ValueError, match="was pretrained with model='resnet20', not 'resnet32'"):
        task.architecture(other, digits.info)
    with pytest.raises(ValueError, match="takes no op="):
        get_task("spark").architecture(TrainConfig(task="spark", op="shift"), digits.info)


@pytest.mark.slow
def test_pretrain_then_finetune_on_digits(tmp_path):
    common = ["--model", "resnet20", "--data", "digits", "--no-progress"]
    assert main(["train", "--task", "spark", "--epochs", "3", "--out", str(tmp_path / "pre"), *common]) == 0
    history = [json.loads(line) for line in (tmp_path / "pre" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["test_loss"] for r in history if "test_loss" in r]
    assert losses[-1] < losses[0]
    init = ["--option", f"init={tmp_path / 'pre' / 'checkpoint'}"]
    ft = ["train", "--task", "spark-finetune", *init, "--epochs", "3", "--out", str(tmp_path / "ft"), *common]
    assert main(ft) == 0
    model, checkpoint = build_from_checkpoint(tmp_path / "ft" / "checkpoint")
    assert checkpoint.meta["metrics"]["test_acc"] > 0.8
