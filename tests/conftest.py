"""Test-wide settings and fixtures: one intra-op thread, so small tensors run fast even when the cores are shared."""

import dataclasses

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits_checkpoint(tmp_path_factory):
    """An untrained small ResNet-20 checkpoint that records the digits test set (for deploy and eval paths)."""
    from convzoo.data import load_dataset
    from convzoo.models import create_model
    from convzoo.train import save_checkpoint

    torch.manual_seed(0)
    architecture = {"model": "resnet20", "op": None, "num_classes": 10, "in_chans": 1, "cfg": {"layers": [1, 1, 1]}}
    model = create_model("resnet20", num_classes=10, in_chans=1, layers=(1, 1, 1))
    data = dataclasses.asdict(load_dataset("digits", "test").info)
    data.pop("split")
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint", model, architecture, data=data)
