"""RotNet (S76) and Noise As Targets (S86): rotations against index loops, the Hungarian reassignment against
brute force, the assignment staying a permutation through training steps, and (slow) RotNet's linear probe
beating the same probe on random features."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convzoo.models import create_model
from convzoo.train import TrainConfig, train
from convzoo.train.probe import linear_probe
from convzoo.train.task import get_task
from convzoo.train.tasks.nat import reassign
from convzoo.train.tasks.rotnet import rotations

SMALL = {"layers": [1, 1, 1]}


def test_rotations_by_index_loops():
    images = torch.arange(2 * 3 * 3, dtype=torch.float32).view(2, 1, 3, 3)
    turned, labels = rotations(images)
    assert labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    for b in range(2):
        img = images[b, 0]
        expected = img.clone()
        for k in range(4):
            assert torch.equal(turned[k * 2 + b, 0], expected), k
            rotated = torch.empty_like(expected)
            for i in range(3):
                for j in range(3):
                    rotated[i, j] = expected[j, 2 - i]  # one turn counter-clockwise
            expected = rotated
    with pytest.raises(ValueError, match="square"):
        rotations(torch.zeros(1, 1, 2, 3))


def test_hungarian_reassignment_is_the_best_permutation():
    generator = torch.Generator().manual_seed(0)
    codes = F.normalize(torch.randn(6, 4, generator=generator), dim=1)
    targets = F.normalize(torch.randn(6, 4, generator=generator), dim=1)
    best = min(itertools.permutations(range(6)), key=lambda p: ((codes - targets[list(p)]) ** 2).sum().item())
    assert reassign(codes, targets).tolist() == list(best)


def test_nat_steps_keep_the_assignment_a_permutation():
    torch.manual_seed(0)
    task = get_task("nat")
    config = TrainConfig(model="resnet20", task="nat", cfg=SMALL, options={"dim": 8, "probe": False})
    data = task.load("digits", "train", None, config.options)
    model = task.create(task.architecture(config, data.info))
    n = len(data)
    assert model.targets.shape == (n, 8) and torch.allclose(model.targets.norm(dim=1), torch.ones(n))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for step in range(3):
        index = torch.randperm(n)[:16]
        held = set(model.assignment[index].tolist())
        images = torch.stack([data[i][0] for i in index.tolist()])
        loss, sums = task.step(model, (images, index), config)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        assert set(model.assignment[index].tolist()) == held, step  # the batch's targets moved among its images
        assert torch.equal(model.assignment.sort().values, torch.arange(n)), step
        assert 0 <= sums["loss_sum"] / sums["seen"] <= 4  # squared distance of unit vectors
    with pytest.raises(ValueError, match="takes no --ema"):
        task.architecture(TrainConfig(model="resnet20", task="nat", ema_decay=0.9), data.info)


@pytest.mark.slow
def test_rotnet_probe_beats_the_probe_on_random_features(tmp_path):
    torch.manual_seed(0)
    random_net = create_model("resnet20", num_classes=4, in_chans=1, layers=(1, 1, 1))
    random_features = linear_probe(random_net, stage=-2)  # the same probe, on the same stage, untrained
    config = TrainConfig(
        model="resnet20", task="rotnet", cfg=SMALL, epochs=8, batch_size=64, out=str(tmp_path), progress=False
    )
    result = train(config)
    assert result.history[-1]["test_rot_acc"] > 0.8
    assert result.history[-1]["test_probe_acc"] > random_features
    assert np.isfinite(random_features)
