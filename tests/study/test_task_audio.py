"""convzoo study --task audio: trains each model, times its deploy form on one-second clips, and writes
results.json and an HTML report with the accuracy-latency plot (atomically: no temporary files left)."""

from __future__ import annotations

import argparse
import json

import pytest

from convzoo.study import task_audio

pytest.importorskip("soundfile", reason="soundfile (the audio extra) is not installed")


def args(out, **given):
    values = {
        "models": "acdnet",
        "data": None,
        "data_root": None,
        "epochs": 1,
        "seed": 0,
        "seeds": None,
        "out": str(out),
        "threads": 1,
        "repeats": 2,
        "option": ["per_class=5"],
        "no_progress": True,
    }
    return argparse.Namespace(**{**values, **given})


def test_the_audio_study_writes_results_and_a_report_with_a_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))
    assert task_audio.main(args(tmp_path / "study")) == 0
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    (row,) = results["rows"]
    assert row["model"] == "acdnet" and 0 <= row["accuracy"] <= 1 and row["latency_ms"] > 0 and row["macs"] > 0
    assert results["settings"]["classes"] == 10 and results["runs"][0]["seed"] == 0
    page = (tmp_path / "study" / "report.html").read_text()
    assert "data:image/png;base64," in page and "acdnet" in page
    assert not list((tmp_path / "study").glob(".*.tmp"))
    assert "acdnet" in capsys.readouterr().out


def test_a_model_of_another_task_is_refused(tmp_path):
    with pytest.raises(ValueError, match="not an audio model"):
        task_audio.main(args(tmp_path, models="resnet20"))
