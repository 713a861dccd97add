"""convzoo subnets: a deps checkpoint's largest, smallest and sampled subnets scored without retraining, filtered by a
MACs budget; bad input exits 2 with one line."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch

from convzoo.cli import main
from convzoo.data import load_dataset
from convzoo.train import TrainConfig, save_checkpoint
from convzoo.train.task import get_task

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
}


@pytest.fixture(scope="module")
def deps_checkpoint(tmp_path_factory):
    """An untrained tiny supernet checkpoint as the deps task writes it (calibration on 32 images)."""
    torch.manual_seed(0)
    task = get_task("deps")
    config = TrainConfig(task="deps", model="ofa_mbv3_small", cfg=TINY, options={"calibrate": 32})
    info = load_dataset("digits", "test").info
    architecture = json.loads(json.dumps({"task": "deps", **task.architecture(config, info)}))
    model = task.create(architecture)
    data = dataclasses.asdict(info)
    data.pop("split")
    folder = tmp_path_factory.mktemp("deps") / "checkpoint"
    train_config = json.loads(json.dumps(dataclasses.asdict(config)))
    return save_checkpoint(folder, model, architecture, data=data, train_config=train_config), model


def _rows(printed: str) -> dict[str, float]:
    """subnet name → MMACs, from the printed table."""
    found = re.findall(r"^(largest|smallest|sample \d+)\s+\|?\s*([0-9.]+)", printed, flags=re.MULTILINE)
    return {name: float(mmacs) for name, mmacs in found}


def test_subnets_are_listed_and_filtered_by_budget(deps_checkpoint, capsys):
    folder, model = deps_checkpoint
    assert main(["subnets", str(folder), "--count", "2"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert set(rows) == {"largest", "smallest", "sample 1", "sample 2"}
    assert rows["largest"] == pytest.approx(model.subnet_macs(model.largest(), (32, 32)) / 1e6, abs=1e-3)
    budget = (model.subnet_macs(model.smallest(), (32, 32)) + model.subnet_macs(model.largest(), (32, 32))) // 2
    assert main(["subnets", str(folder), "--count", "3", "--macs", str(budget), "--calibrate", "0"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert "largest" not in rows and {"smallest", "sample 1", "sample 2", "sample 3"} <= set(rows)
    assert all(mmacs <= budget / 1e6 + 1e-3 for mmacs in rows.values())


def test_bad_input_exits_2(deps_checkpoint, digits_checkpoint, exits_2_with_one_line):
    folder, model = deps_checkpoint
    exits_2_with_one_line(["subnets", str(folder), "--macs", "lots"], "expected a MACs count like 2e6, got 'lots'")
    exits_2_with_one_line(["subnets", str(folder), "--macs", "10"], "over the budget 10")
    exits_2_with_one_line(["subnets", str(digits_checkpoint)], "is a 'classify' checkpoint, not one of the deps task")
