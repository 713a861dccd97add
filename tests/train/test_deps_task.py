"""Task deps (S113, DεpS): the subnet weight β follows the incremental schedule, a step trains only the full model
before ε and the sandwich with in-place distillation after (loss equal to one computed by hand), channels are
sorted once when shrinking starts, evaluation scores extracted subnets without touching the supernet or the RNG,
an interrupted run resumes exactly; errors; and (slow) a digits run through ``convzoo train``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from convzoo.cli import main
from convzoo.data.base import TensorImageDataset, load_dataset
from convzoo.train import TrainConfig, train
from convzoo.train.task import get_task
from convzoo.train.tasks.deps import DEpS, subnet_weight

TINY = {
    "stem": 8,
    "widths": (8, 16),
    "strides": (2, 2),
    "se": (False, True),
    "hswish": (False, True),
    "kernel_choices": (3, 5),
    "expand_choices": (2, 3),
    "depth_choices": (1, 2),
    "final_expand": 2,
    "feature_mix": 32,
    "dropout": 0.0,
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "test", None)


def _config(**options) -> TrainConfig:
    return TrainConfig(task="deps", model="ofa_mbv3_small", cfg=TINY, epochs=10, warmup_epochs=0.0, options=options)


def test_subnet_weight_rises_to_one_by_epsilon():
    config = _config(epsilon=0.5, ramp=0.1)

    def cosine(p: float) -> float:
        return 0.5 * (1 + math.cos(math.pi * p))

    assert subnet_weight(0.39, 0.5, 0.1, config) == 0.0
    assert subnet_weight(0.5, 0.5, 0.1, config) == 1.0 and subnet_weight(0.9, 0.5, 0.1, config) == 1.0
    for p in (0.42, 0.45, 0.49):
        # the subnets' effective rate β·lr(p) is the fraction (p - 0.4)/0.1 of lr(0.5)
        expected = (p - 0.4) / 0.1 * cosine(0.5) / cosine(p)
        assert subnet_weight(p, 0.5, 0.1, config) == pytest.approx(expected, rel=1e-4)


def test_steps_before_and_after_epsilon(digits):
    task = get_task("deps")
    config = _config(epsilon=0.5, ramp=0.1, temperature=2.0, subnets=4, sort=False)
    model = task.create(task.architecture(config, digits.info))
    images, labels = digits.images[:16], digits.labels[:16]
    model.progress = 0.2  # full-model warm-up: the largest subnet alone, cross-entropy with label smoothing
    loss, sums = task.step(model, (images, labels), config)
    model.set_active(model.largest())
    expected = F.cross_entropy(model(images), labels, label_smoothing=config.label_smoothing)
    torch.testing.assert_close(loss, expected)
    assert "kd" not in sums and sums["seen"] == 16

    model.progress = 0.7  # shrinking with β = 1: largest (CE) + smallest + 2 sampled (in-place KD, T = 2)
    torch.manual_seed(0)
    loss, sums = task.step(model, (images, labels), config)
    torch.manual_seed(0)
    model.set_active(model.largest())
    full = model(images)
    expected = F.cross_entropy(full, labels, label_smoothing=config.label_smoothing)
    teacher = F.softmax(full.detach() / 2.0, dim=1)
    for subnet in (model.smallest(), model.sample(), model.sample()):
        model.set_active(subnet)
        expected = expected + 4.0 * F.cross_entropy(model(images) / 2.0, teacher)
    torch.testing.assert_close(loss, expected)
    assert sums["beta"] == 16.0


def test_channels_are_sorted_once_when_shrinking_starts(digits):
    task = get_task("deps")
    config = _config(epsilon=0.5, ramp=0.1)
    model = task.create(task.architecture(config, digits.info))
    batch = (digits.images[:8], digits.labels[:8])
    model.progress = 0.3
    task.step(model, batch, config)
    assert not bool(model.channels_sorted)
    model.progress = 0.4
    task.step(model, batch, config)
    assert bool(model.channels_sorted)


def test_evaluate_scores_subnets_and_touches_nothing(digits):
    task = get_task("deps")
    config = _config(sampled=1, calibrate=32)
    small = task.load("digits", "test", None, config.options)
    small = TensorImageDataset(small.images[:48], small.labels[:48], small.info)
    model = task.create(task.architecture(config, digits.info)).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    metrics = task.evaluate(model, small, torch.device("cpu"))
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert set(metrics) == {f"{p}{m}" for p in ("", "min_", "sub1_") for m in ("acc", "loss", "mmacs")}
    assert metrics["min_mmacs"] < metrics["mmacs"]
    assert metrics == task.evaluate(model, small, torch.device("cpu"))


def test_resume_equals_an_uninterrupted_run(tmp_path, monkeypatch):
    load = DEpS.load

    def few(self, data, split, root, options):  # 256 training and 96 test images keep the runs short
        dataset = load(self, data, split, root, options)
        n = 256 if split == "train" else 96
        return TensorImageDataset(dataset.images[:n], dataset.labels[:n], dataset.info)

    monkeypatch.setattr(DEpS, "load", few)
    options = {"epsilon": 0.6, "ramp": 0.2, "calibrate": 32, "sampled": 1}  # shrinking starts in epoch 2
    common = dict(task="deps", model="ofa_mbv3_small", cfg=TINY, batch_size=64, progress=False, options=options)
    straight = train(TrainConfig(epochs=3, out=str(tmp_path / "a"), **common))
    interrupted = train(TrainConfig(epochs=3, out=str(tmp_path / "b"), **common), on_epoch_end=lambda record: False)
    assert len(interrupted.history) == 1 and not bool(interrupted.model.channels_sorted)
    resumed = train(TrainConfig(epochs=3, out=str(tmp_path / "b"), **common), resume=True)
    assert bool(resumed.model.channels_sorted)
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    keys = ("test_acc", "test_min_acc", "test_sub1_acc", "train_loss")
    assert [[h[k] for k in keys] for h in straight.history] == [[h[k] for k in keys] for h in resumed.history]


def test_errors(digits):
    with pytest.raises(ValueError, match="ramp must be"):
        TrainConfig(task="deps", model="ofa_mbv3_small", options={"epsilon": 0.1, "ramp": 0.2})
    with pytest.raises(ValueError, match="subnets must be an int ≥ 2, got 1"):
        TrainConfig(task="deps", model="ofa_mbv3_small", options={"subnets": 1})
    with pytest.raises(ValueError, match="takes no option 'teacher'"):
        TrainConfig(task="deps", model="ofa_mbv3_small", options={"teacher": "x"})
    task = get_task("deps")
    with pytest.raises(ValueError, match="takes no op="):
        task.architecture(TrainConfig(task="deps", model="ofa_mbv3_small", op="shift"), digits.info)
    with pytest.raises(ValueError, match="is a classify model; task 'deps' trains supernet models"):
        task.check_model("resnet20")


@pytest.mark.slow
def test_digits_run_through_the_cli(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--task", "deps", "--model", "ofa_mbv3_small", "--data", "digits", "--epochs", "2"]
    args += ["--no-progress", "--out", str(out), "--option", "epsilon=0.25", "--option", "ramp=0.1"]
    assert main(args) == 0
    assert "ofa_mbv3_small on digits" in capsys.readouterr().out
    assert main(["eval", str(out / "checkpoint")]) == 0
    assert "min_acc" in capsys.readouterr().out
