"""``convzoo study --task seg``: same budget for every model, mIoU against deploy latency, atomic report."""

from __future__ import annotations

import json

import pytest

import convzoo.data.shapes as shapes
from convzoo.cli import main
from convzoo.study.task_seg import SegRow, SegStudyConfig, pareto


@pytest.fixture
def small_shapes(monkeypatch):
    monkeypatch.setattr(shapes, "LENGTHS", {"train": 16, "test": 8})
    shapes._rendered.cache_clear()
    yield
    shapes._rendered.cache_clear()


@pytest.mark.slow
def test_seg_study_trains_times_and_reports(tmp_path, small_shapes, capsys):
    out = tmp_path / "study"
    argv = ["study", "--task", "seg", "--models", "fcn32s,fcn8s:shift", "--epochs", "1", "--repeats", "2",
            "--threads", "1", "--option", "backbone=resnet20", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {r["model"]: r for r in results["rows"]}
    assert set(rows) == {"fcn32s", "fcn8s:shift"}
    for row in rows.values():
        assert row["status"] == "ok" and 0 <= row["miou"] <= 1 and row["latency_ms"] > 0 and row["params"] > 0
    assert results["settings"]["backbone"] == "resnet20" and results["settings"]["epochs"] == 1
    assert "mIoU against deploy latency" in (out / "report.html").read_text()
    assert "fcn8s:shift" in capsys.readouterr().out


def test_pareto_front_and_bad_settings():
    rows = [SegRow("a", miou=0.5, latency_ms=1.0), SegRow("b", miou=0.4, latency_ms=2.0),
            SegRow("c", miou=0.9, latency_ms=3.0), SegRow("d", status="not timed")]  # fmt: skip
    assert pareto(rows) == ["a", "c"]
    with pytest.raises(ValueError, match="'resnet18' is a classify model, not a seg one"):
        SegStudyConfig(models=("resnet18",))
    with pytest.raises(ValueError, match="'digits' is not a segmentation set"):
        SegStudyConfig(data="digits")
    with pytest.raises(ValueError, match="backbone must be a registered classifier"):
        SegStudyConfig(backbone="fcn8s")
    with pytest.raises(ValueError, match="augment must be one of 'none', 'dihedral', got 'flip'"):
        SegStudyConfig(augment="flip")
    with pytest.raises(ValueError, match="size"):
        SegStudyConfig(size=-2)


def test_shapes_preset_and_other_sets_defaults_reach_the_trainer(tmp_path):
    preset = SegStudyConfig().train_config("fcn8s", 0, tmp_path).options
    assert preset == {"ignore_index": 255, "augment": "dihedral", "train_length": 0, "size": 96}
    given = SegStudyConfig(augment="none", size=0).train_config("fcn8s", 0, tmp_path).options
    assert (given["augment"], given["size"]) == ("none", 0)
    voc = SegStudyConfig(data="voc").train_config("fcn8s", 0, tmp_path).options
    assert (voc["augment"], voc["size"]) == ("none", 0)


def test_unknown_option_exits_2(capsys):
    assert main(["study", "--task", "seg", "--option", "scale=3", "--out", "/nonexistent/x"]) == 2
    assert "no option 'scale'" in capsys.readouterr().err


def test_a_size_the_set_refuses_exits_2_before_training(tmp_path, capsys):
    argv = ["study", "--task", "seg", "--option", "size=3", "--out", str(tmp_path / "s"), "--no-progress"]
    assert main(argv) == 2
    assert "shapes: size must be an int ≥ 16, got 3" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
