"""convzoo sample: a diffusion checkpoint to a PNG grid (atomically), judged by a digits classifier checkpoint."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image

from convzoo.cli import main
from convzoo.data import load_dataset
from convzoo.train import TrainConfig, save_checkpoint
from convzoo.train.task import get_task


@pytest.fixture(scope="module")
def diffusion_checkpoint(tmp_path_factory):
    """An untrained tiny DiC checkpoint as the diffusion task writes it."""
    torch.manual_seed(0)
    task = get_task("diffusion")
    config = TrainConfig(model="dic_s", task="diffusion", cfg={"hidden_size": 8, "depth": [1, 1, 1, 1, 1]})
    info = load_dataset("digits", "test").info
    architecture = {"task": "diffusion", **task.architecture(config, info)}
    model = task.create(architecture)
    data = dataclasses.asdict(info)
    data.pop("split")
    return save_checkpoint(tmp_path_factory.mktemp("dic") / "checkpoint", model, architecture, data=data)


def test_sample_writes_a_grid_of_the_requested_samples(diffusion_checkpoint, digits_checkpoint, tmp_path, capsys):
    out = tmp_path / "grid.png"
    args = ["sample", str(diffusion_checkpoint), "--n", "12", "--steps", "2", "--out", str(out), "--no-progress"]
    assert main([*args, "--judge", str(digits_checkpoint)]) == 0
    image = Image.open(out)
    # 12 samples, 10 per row: 2 rows of 32-pixel images with 2-pixel gaps
    assert image.size == (10 * 34 + 2, 2 * 34 + 2) and image.mode == "L"
    printed = capsys.readouterr().out
    assert "12 samples (ddim, 2 steps, guidance 2" in printed and "labelled as the class asked for" in printed
    assert not list(tmp_path.glob(".grid.png.*"))  # the temporary file was renamed away


def test_sample_refuses_a_classifier_checkpoint_and_a_bad_class(diffusion_checkpoint, digits_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="not a diffusion one"):
        from convzoo.train.diffusion import load_sampler

        load_sampler(str(digits_checkpoint))
    assert main(["sample", str(diffusion_checkpoint), "--class", "10", "--out", str(tmp_path / "x.png")]) == 2
