"""deploy_checkpoint(): the deploy pipeline without the command line, its typed report, and its refusals."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from convzoo.data import load_dataset
from convzoo.deploy import DeployReport, deploy_checkpoint
from convzoo.train import evaluate


@pytest.fixture(scope="module")
def checkpoint(digits_checkpoint):
    return digits_checkpoint


def test_fuse_and_reparam_report_every_form_and_write_it(checkpoint, tmp_path):
    out = tmp_path / "deployed"
    report = deploy_checkpoint(checkpoint, out, fuse=True, reparam=True, batch=4, repeats=2)
    assert isinstance(report, DeployReport) and report.data == "digits" and report.batch == 4
    eager, fused = report.forms
    # the version of the checkpoint that was read (the link resolved once), so the report names exact files
    assert eager.label == "checkpoint (fp32 eager)" and eager.path == (checkpoint / "model.safetensors").resolve()
    assert fused.label.startswith("reparam (") and report.steps[-1] == "fuse_bn"
    assert fused.label.endswith((" + fuse_bn (nchw)", " + fuse_bn (channels_last)"))  # the layout measured fastest
    assert report.written == (out / "fp32.pt",) and fused.bytes == (out / "fp32.pt").stat().st_size
    assert abs(fused.accuracy - eager.accuracy) <= 0.005 and report.speedup(eager) == 1.0
    assert json.loads((out / "deploy.json").read_text()) == json.loads(json.dumps(report.to_dict()))
    assert (out / "deploy.md").read_text() == report.table() and report.table().startswith("model")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch 2.13 but works
        loaded = torch.jit.load(str(out / "fp32.pt"))
    accuracy = evaluate(loaded, load_dataset("digits", "test"), 4, fixed_batch=True)[1]
    assert accuracy == pytest.approx(fused.accuracy)  # the one accuracy loop, on the written file


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"int8": "fx"}, r"deploy: int8 needs calib=DATA"),
        ({"int8": "tflite", "calib": "digits"}, r"deploy: int8 must be one of 'fx', 'pt2e', got 'tflite'"),
        ({"calib": "digits"}, r"deploy: calib and qat apply to int8 only"),
        ({"batch": 0}, r"deploy: batch must be a positive int, got 0"),
    ],
)
def test_bad_arguments_fail_before_any_work(checkpoint, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        deploy_checkpoint(checkpoint, tmp_path / "deployed", **kwargs)
    assert not (tmp_path / "deployed").exists()


def test_out_must_be_a_directory(checkpoint, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match=r"deploy: out must be a directory, got the file"):
        deploy_checkpoint(checkpoint, tmp_path / "file")
