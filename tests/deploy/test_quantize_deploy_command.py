"""convzoo deploy --int8 --int8-backend pt2e: the PT2E int8 form is written as a torch.export program."""

from __future__ import annotations

import dataclasses
import json
import zipfile

import pytest
import torch

from convzoo.cli import main
from convzoo.data import load_dataset
from convzoo.models import create_model
from convzoo.train import save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    architecture = {"model": "resnet20", "op": None, "num_classes": 10, "in_chans": 1, "cfg": {"layers": [1, 1, 1]}}
    model = create_model("resnet20", num_classes=10, in_chans=1, layers=(1, 1, 1))
    data = dataclasses.asdict(load_dataset("digits", "test").info)
    data.pop("split")
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint", model, architecture, data=data)


@pytest.mark.slow  # torch.compile of the int8 graph, at the calibration and the latency batch
def test_pt2e_int8_writes_the_exported_program_and_the_float_report(checkpoint, tmp_path, capsys):
    pytest.importorskip("torchao")
    out = tmp_path / "deployed"
    args = [str(checkpoint), "--int8", "--int8-backend", "pt2e", "--calib", "digits", "--repeats", "2"]
    assert main(["deploy", *args, "--out", str(out)]) == 0
    assert "int8 ptq (pt2e)" in capsys.readouterr().out
    before, after = json.loads((out / "deploy.json").read_text())["results"]
    assert abs(after["accuracy"] - before["accuracy"]) <= 0.05
    # int8 weights; the graph's JSON, which outweighs them in so small a model, is left out of the comparison
    with zipfile.ZipFile(out / "int8.pt2") as archive:
        weights = sum(i.file_size for i in archive.infolist() if "/data/weights/weight_" in i.filename)
    assert weights < 0.3 * before["bytes"] and after["bytes"] == (out / "int8.pt2").stat().st_size
    loaded = torch.export.load(str(out / "int8.pt2")).module()
    assert loaded(load_dataset("digits", "test").images[:3]).shape == (3, 10)
    assert (out / "quantize.md").read_text().startswith("int8 ptq (pt2e)")


@pytest.mark.parametrize("backend", ["fx", "pt2e"])
def test_int8_backend_needs_int8(checkpoint, tmp_path, capsys, backend):
    assert main(["deploy", str(checkpoint), "--int8-backend", backend, "--out", str(tmp_path)]) == 2
    assert "--int8-backend only applies with --int8" in capsys.readouterr().err


def test_unknown_int8_backend(checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["deploy", str(checkpoint), "--int8", "--int8-backend", "tflite", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'tflite' (choose from" in capsys.readouterr().err
