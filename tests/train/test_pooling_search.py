"""The pooling-search task (S66) through the trainer: per-batch sampling, the balanced assignment, the search's
ranking, exact ``--resume`` and the option refusals. A narrow space (5 layers, 2 pools: 6 configurations, 2
SuperNets) keeps each run at seconds."""

from __future__ import annotations

import math

import pytest
import torch

from convzoo.models.pooling_supernet import marginal_kl, pooling_configurations
from convzoo.train import TrainConfig, train
from convzoo.train.tasks.pooling_search import SearchSplit, search, validation_split

SMALL = {"widths": (4, 4, 8, 8, 8), "supernets": 2}


def _config(**changes) -> TrainConfig:
    settings = dict(
        task="pooling-search", model="pooling_supernet_resnet20", data="digits", cfg=SMALL, epochs=2, batch_size=64,
        progress=False,
    )  # fmt: skip
    return TrainConfig(**{**settings, **changes})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(_config(out=str(tmp_path_factory.mktemp("pool") / "run")))


def test_every_batch_trains_one_sampled_pair_and_scores_it(run):
    model = run.model
    steps = run.history[-1]["step"]
    assert steps == 2 * math.ceil(673 / 64)  # digits: 1,347 training images, half of them train
    assert int(model.steps) == steps and int(model.counts.sum()) == steps
    assert (model.counts > 0).sum() >= 4  # several (configuration, SuperNet) pairs were drawn
    untouched = model.counts == 0
    assert bool((model.scores[untouched] == 1).all())  # the starting score until a pair is trained
    assert bool((model.scores[~untouched] < 1).all())  # the EMA of a validation accuracy below 1
    assert 1 < float(model.temperature) <= 100  # rising from t0 = 1 toward tmax = 100
    assert marginal_kl(model.assignment()) <= 1e-4  # the assignment the last batches were drawn from is balanced
    assert {"test_acc", "test_score", "train_val_acc"} <= set(run.history[-1])


def test_the_search_returns_a_configuration_and_its_score(run):
    model = run.model.eval()
    validation = validation_split("digits", None, 0.5)
    ranking = search(model, validation, batch_size=128)
    assert [r.rank for r in ranking] == list(range(1, 7))
    assert {r.pool_at for r in ranking} == set(pooling_configurations(5, 2))
    assert [r.accuracy for r in ranking] == sorted((r.accuracy for r in ranking), reverse=True)
    assigned = model.assigned()
    assert all(r.supernet == int(assigned[r.index]) for r in ranking)
    best = ranking[0]
    # the best configuration's standalone network, scored here by a plain loop, gives the search's score
    net = model.supernets[best.supernet].extract(best.pool_at).eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(validation), 128):
            items = [validation[i] for i in range(start, min(start + 128, len(validation)))]
            images, labels = torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])
            correct += (net(images).argmax(1) == labels).sum().item()
    assert best.accuracy == correct / len(validation)
    assert 0 <= best.accuracy <= 1 and best.score == float(model.scores[best.index, best.supernet])


def test_the_validation_half_is_disjoint_from_the_training_half():
    from convzoo.data.base import load_dataset

    split = SearchSplit(load_dataset("digits", "train"), 0.5)
    train_index, val_index = set(split.train_index.tolist()), set(split.val_index.tolist())
    assert not train_index & val_index and len(train_index | val_index) == 1347
    assert len(split) == 673 and len(validation_split("digits", None, 0.5)) == 674
    image, label, val_image, val_label = split[5]
    assert image.shape == val_image.shape == (1, 32, 32)


def test_a_resumed_search_equals_an_uninterrupted_one(tmp_path):
    straight = train(_config(out=str(tmp_path / "a")))
    train(_config(out=str(tmp_path / "b")), on_epoch_end=lambda record: False)
    resumed = train(_config(out=str(tmp_path / "b")), resume=True)
    keys = ("train_loss", "train_val_acc", "test_acc", "test_score")
    assert [[h[k] for k in keys] for h in straight.history] == [[h[k] for k in keys] for h in resumed.history]
    for name in ("scores", "counts", "steps", "temperature"):
        assert torch.equal(getattr(straight.model, name), getattr(resumed.model, name)), name
    for (name, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_refusals():
    with pytest.raises(ValueError, match="takes no option 'temperature'"):
        _config(options={"temperature": 5})
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \(0, 1\), got 1.0"):
        _config(options={"val_fraction": 1.0})
    with pytest.raises(ValueError, match=r"ema must be a number in \[0, 1\), got 1.0"):
        _config(options={"ema": 1.0})
    with pytest.raises(ValueError, match="'resnet20' is a classify model; task 'pooling-search' trains"):
        train(_config(model="resnet20"))
    with pytest.raises(ValueError, match="classes comes from the data"):
        train(_config(cfg={**SMALL, "classes": 3}))
