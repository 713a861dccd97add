"""convzoo deploy: a checkpoint in, the deploy forms and a before/after table out (FX and PT2E int8 included);
usage errors exit 2. The pipeline itself is convzoo.deploy.deploy_checkpoint (tests/deploy/test_pipeline.py)."""

from __future__ import annotations

import json
import warnings
import zipfile

import pytest
import torch

from convzoo.cli import main
from convzoo.data import load_dataset


@pytest.fixture(scope="module")
def checkpoint(digits_checkpoint):
    return digits_checkpoint


def test_fuse_reparam_int8_writes_the_model_and_the_table(checkpoint, tmp_path, capsys):
    out = tmp_path / "deployed"
    args = [str(checkpoint), "--fuse", "--reparam", "--int8", "--calib", "digits", "--repeats", "2", "--out", str(out)]
    assert main(["deploy", *args]) == 0
    printed = capsys.readouterr().out
    assert "checkpoint (fp32 eager)" in printed and "fuse_bn + int8 ptq" in printed and "digits test acc" in printed
    report = json.loads((out / "deploy.json").read_text())
    before, fused, after = report["results"]
    assert abs(fused["accuracy"] - before["accuracy"]) <= 0.005  # the same function up to float rounding
    assert after["bytes"] < 0.6 * before["bytes"]  # int8 weights (plus the TorchScript code)
    assert abs(after["accuracy"] - before["accuracy"]) <= 0.05
    loaded = _load(str(out / "int8.pt"))
    assert loaded(load_dataset("digits", "test").images[:3]).shape == (3, 10)
    assert (out / "deploy.md").read_text().startswith("model")


@pytest.mark.peer
def test_optimize_and_onnx_rows(checkpoint, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    out = tmp_path / "deployed"
    args = [str(checkpoint), "--optimize", "--onnx", str(out / "m.onnx"), "--repeats", "2", "--out", str(out)]
    assert main(["deploy", *args]) == 0
    results = json.loads((out / "deploy.json").read_text())["results"]
    assert [r["model"].split(" (")[0] for r in results] == ["checkpoint", "optimize", "onnxruntime fp32"]
    assert len({round(r["accuracy"], 3) for r in results}) == 1  # three forms of one function
    assert (out / "optimize.md").read_text().count("(chosen)") == 1 and (out / "fp32.pt").is_file()


def test_int8_needs_calibration_data(checkpoint, tmp_path, capsys):
    assert main(["deploy", str(checkpoint), "--int8", "--out", str(tmp_path)]) == 2
    assert "--int8 needs --calib DATA" in capsys.readouterr().err


def test_calib_without_int8(checkpoint, tmp_path, capsys):
    assert main(["deploy", str(checkpoint), "--calib", "digits", "--out", str(tmp_path)]) == 2
    assert "--calib only applies with --int8" in capsys.readouterr().err


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


def _load(path: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch 2.13 but works
        return torch.jit.load(path)
