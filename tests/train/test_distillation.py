"""Function-matching distillation (S102) and ScaleKD (S89): the KL against a hand sum, teacher and student fed the
very same augmented view, the student's distance to the teacher falling, the DC-free spectrum against Parseval,
and a cross-architecture feature distillation that builds and trains."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo.data.base import load_dataset
from convzoo.train import TrainConfig
from convzoo.train.task import get_task
from convzoo.train.tasks.distill import distill_kl, load_teacher
from convzoo.train.tasks.scalekd import without_direct_component

SMALL = {"layers": [1, 1, 1]}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    """A small ResNet-20 checkpoint on digits whose head is scaled up so its outputs are far from uniform."""
    import dataclasses

    from convzoo.models import create_model
    from convzoo.train import save_checkpoint

    torch.manual_seed(1)
    architecture = {"model": "resnet20", "op": None, "num_classes": 10, "in_chans": 1, "cfg": {"layers": [1, 1, 1]}}
    model = create_model("resnet20", num_classes=10, in_chans=1, layers=(1, 1, 1))
    with torch.no_grad():
        model.head.fc.weight.mul_(30)
    data = dataclasses.asdict(load_dataset("digits", "test").info)
    data.pop("split")
    return save_checkpoint(tmp_path_factory.mktemp("teacher") / "checkpoint", model, architecture, data=data)


def test_distill_kl_by_hand():
    s, t = torch.tensor([[1.0, 0.0, -1.0]]), torch.tensor([[0.5, 0.5, 0.0]])
    for temperature in (1.0, 2.0):
        p = torch.softmax(t / temperature, 1)[0].tolist()
        q = torch.softmax(s / temperature, 1)[0].tolist()
        expected = temperature**2 * sum(a * (math.log(a) - math.log(b)) for a, b in zip(p, q, strict=True))
        assert distill_kl(s, t, temperature).item() == pytest.approx(float(expected), rel=1e-5)
    assert distill_kl(t, t).item() == pytest.approx(0.0, abs=1e-7)


def _setup(task_name, teacher, model="resnet20", cfg=SMALL, **options):
    torch.manual_seed(0)
    task = get_task(task_name)
    config = TrainConfig(model=model, task=task_name, cfg=cfg, options={"teacher": str(teacher), **options})
    data = task.load("digits", "train", None, config.options)
    net = task.create(task.architecture(config, data.info))
    return task, config, data, net


def test_teacher_and_student_see_the_same_augmented_view(teacher):
    task, config, data, student = _setup("distill", teacher)
    frozen = load_teacher(str(teacher), torch.device("cpu"))
    seen = {}
    hooks = [
        m.register_forward_pre_hook(lambda mod, args, key=key: seen.__setitem__(key, args[0].clone()))
        for key, m in (("teacher", frozen), ("student", student))
    ]
    images = data.images[:8]
    task.step(student, (images, data.labels[:8]), config)
    for hook in hooks:
        hook.remove()
    assert torch.equal(seen["teacher"], seen["student"])
    assert not torch.equal(seen["student"], images)  # augmented: cropped and mixed


def test_the_student_moves_toward_the_teacher(teacher):
    task, config, data, student = _setup("distill", teacher)
    frozen = load_teacher(str(teacher), torch.device("cpu"))
    clean = data.images[:64]

    def distance():
        student.eval()
        with torch.no_grad():
            value = distill_kl(student(clean), frozen(clean)).item()
        student.train()
        return value

    before = distance()
    optimizer = torch.optim.AdamW(student.parameters(), lr=3e-3)
    for step in range(20):
        index = torch.arange(step * 16, step * 16 + 16) % 256
        loss, _ = task.step(student, (data.images[index], data.labels[index]), config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert before > 0.1 and distance() < 0.5 * before


def test_distill_needs_a_teacher():
    with pytest.raises(ValueError, match="needs --option teacher=PATH"):
        TrainConfig(task="distill")
    with pytest.raises(FileNotFoundError, match="no teacher checkpoint"):
        TrainConfig(task="scalekd", options={"teacher": "/nonexistent/checkpoint"})


def test_the_dc_free_spectrum_ignores_channel_means_and_keeps_the_rest_of_the_energy():
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    spectrum = without_direct_component(x)
    shifted = without_direct_component(x + torch.randn(2, 3, 1, 1, dtype=torch.float64))
    torch.testing.assert_close(spectrum, shifted.to(spectrum.dtype), rtol=1e-5, atol=1e-5)
    centred = x - x.mean((2, 3), keepdim=True)  # Parseval with the orthonormal FFT
    energy = spectrum.double().pow(2).sum((2, 3, 4))
    torch.testing.assert_close(energy, centred.pow(2).sum((2, 3)), rtol=1e-5, atol=1e-5)


def test_scalekd_between_two_architectures_builds_and_trains(teacher):
    task, config, data, model = _setup("scalekd", teacher, model="all_cnn_c", cfg={})
    reference = load_teacher(str(teacher), torch.device("cpu"))
    images, labels = data.images[:8], data.labels[:8]
    teacher_shape = reference.forward_features(images[:1]).shape[1:]
    assert model.projector(model.student.forward_features(images[:1])).shape[1:] == teacher_shape
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(6):
        loss, sums = task.step(model, (images, labels), config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        mimic = (sums["spatial"] + sums["frequency"]) / sums["seen"]
        first = mimic if first is None else first
    assert mimic < first
    test = load_dataset("digits", "test")
    test.info.extra["teacher"] = str(teacher)
    small = type(test)(test.images[:16], test.labels[:16], test.info)
    metrics = task.evaluate(model.eval(), small, torch.device("cpu"))
    assert set(metrics) == {"loss", "acc", "spatial", "frequency"}
