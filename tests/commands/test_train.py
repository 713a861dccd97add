"""convzoo train, eval and predict: --cfg KEY=VALUE read by the one parser, a checkpoint evaluated and asked for
its top classes; usage errors exit 2 with one line."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from convzoo.cli import main
from convzoo.data import load_dataset


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One epoch of a ResNet-8 on digits, its config given as Python and JSON spellings alike."""
    out = tmp_path_factory.mktemp("run")
    cfg = ["--cfg", "layers=[1, 1, 1]", "--cfg", "zero_init_residual=True", "--cfg", "stem='cifar'"]
    assert main(["train", "--epochs", "1", "--no-progress", "--out", str(out), *cfg]) == 0
    return out


def test_train_reads_cfg_values_as_literals_and_prints_the_result(run, capsys):
    saved = json.loads((run / "checkpoint" / "checkpoint.json").read_text())
    assert saved["architecture"]["cfg"] == {"layers": [1, 1, 1], "zero_init_residual": True, "stem": "cifar"}
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["epoch"] == 1


def test_eval_prints_the_checkpoints_accuracy(run, capsys):
    assert main(["eval", str(run / "checkpoint")]) == 0
    out = capsys.readouterr().out
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert f"on digits test: accuracy {last['test_acc']:.4f}" in out
    assert f"({len(load_dataset('digits', 'test'))} images)" in out


def test_predict_prints_the_top_classes(run, tmp_path, capsys):
    test = load_dataset("digits", "test")
    pixels = test.images[0, 0] * test.info.std[0] + test.info.mean[0]  # (H, W) back in [0, 1]
    path = tmp_path / "digit.png"
    Image.fromarray((pixels.clamp(0, 1) * 255).round().to(torch.uint8).numpy()).save(path)
    assert main(["predict", str(run / "checkpoint"), str(path), "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["image", "top-2", "classes", "(probability)"]
    assert lines[2].startswith(str(path)) and lines[2].count(",") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--cfg", "layers", "--out", "x"], "--cfg: expected KEY=VALUE such as rank=8, got 'layers'"),
        (["train", "--cfg", "stem=1", "--cfg", "stem=2", "--out", "x"], "--cfg: stem is given twice"),
        (["train", "--epochs", "0", "--out", "x"], "expected a positive integer, got '0'"),
        (["train", "--lr-steps", "0.5,x", "--out", "x"], "expected fractions like 0.5,0.75, got '0.5,x'"),
        (["train", "--schedule", "step", "--out", "x"], "schedule='step' needs lr_steps"),
        (["train", "--option", "augment=flip", "--out", "x"], "augment option must be one of 'none', 'crop-flip'"),
        (["eval", "no/such/checkpoint"], "no/such/checkpoint"),
        (["predict", "no/such/checkpoint", "a.png"], "no/such/checkpoint"),
    ],
)
def test_bad_usage_exits_2_with_one_line(argv, message, exits_2_with_one_line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may be written by a refused command; if it were, it would be here
    exits_2_with_one_line(argv, message)
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "cache"])


def test_an_interrupted_run_says_how_to_resume_and_exits_130(tmp_path, monkeypatch, capsys):
    import convzoo.train as train_package
    from convzoo.train.trainer import TrainResult

    def interrupted(config, resume=False):
        return TrainResult(torch.nn.Identity(), float("nan"), float("nan"), [], tmp_path / "checkpoint", None, True)

    monkeypatch.setattr(train_package, "train", interrupted)
    assert main(["train", "--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err.strip() == (
        f"interrupted: saved checkpoint {tmp_path / 'checkpoint'}; continue with the same command and --resume"
    )
