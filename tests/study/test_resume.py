"""The study folder: a study killed (SIGKILL) at a random moment and continued with --resume ends with the rows of an
uninterrupted one; --resume skips finished runs, takes new ops and seeds, and refuses changed settings naming them;
a fresh study in the same folder starts over."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convzoo.cli import main

TINY = ["--cfg", "blocks=(1,1,1)", "--cfg", "widths=(8,8,8)"]  # a one-block-per-stage backbone: a run is a second


def _study_args(out: Path, ops: str = "conv,shift", epochs: int = 2, seeds: int = 1, batch: int = 128) -> list[str]:
    return [
        "study", "--ops", ops, "--epochs", str(epochs), "--seeds", str(seeds), *TINY, "--batch-size", str(batch),
        "--repeats", "2", "--threads", "1", "--no-progress", "--out", str(out),
    ]  # fmt: skip


def _finished_rows(out: Path) -> dict[tuple[str, int], tuple[float, list[dict]]]:
    """Every (op, seed) row of the folder: its test accuracy and epoch records (without their wall times)."""
    rows = {}
    for path in sorted((out / "rows").glob("*-seed*.json")):
        row = json.loads(path.read_text())
        history = [{k: v for k, v in epoch.items() if k != "time_s"} for epoch in row["history"]]
        rows[(row["op"], row["seed"])] = (row["test_acc"], history)
    return rows


def _kill_at_random(args: list[str], out: Path, window_s: float) -> float:
    """Start ``convzoo`` with ``args`` and SIGKILL it a random time (up to ``window_s``) after it opened ``out``."""
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    process = subprocess.Popen([sys.executable, "-m", "convzoo", *args], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "study.json").is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    delay = random.uniform(0, window_s)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return delay


def _interrupted_then_resumed(tmp_path: Path, kills: int, window_s: float, **sizes) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    assert main(_study_args(clean, **sizes)) == 0
    delays = [_kill_at_random(_study_args(killed, **sizes), killed, window_s)]
    for _ in range(kills - 1):
        delays.append(_kill_at_random([*_study_args(killed, **sizes), "--resume"], killed, window_s))
    done_before = sorted(_finished_rows(killed))
    assert main([*_study_args(killed, **sizes), "--resume"]) == 0
    where = f"killed {[round(d, 2) for d in delays]} s after start; rows finished then: {done_before}"
    assert _finished_rows(killed) == _finished_rows(clean), where
    results = [json.loads((folder / "results.json").read_text())["rows"] for folder in (clean, killed)]
    assert [(r["op"], r["status"], r["test_accs"]) for r in results[0]] == [
        (r["op"], r["status"], r["test_accs"]) for r in results[1]
    ], where


def test_a_study_killed_at_a_random_moment_resumes_to_the_uninterrupted_rows(tmp_path):
    _interrupted_then_resumed(tmp_path, kills=1, window_s=3.0)


@pytest.mark.slow
def test_a_study_killed_three_times_resumes_to_the_uninterrupted_rows(tmp_path):
    _interrupted_then_resumed(tmp_path, kills=3, window_s=6.0, ops="conv,shift", epochs=3, seeds=2, batch=32)


# --- with a fake trainer: what is trained when ----------------------------------------------------------------


def _fake_train(calls):
    """train() without training: the backbone as built, an accuracy set by the op and seed."""
    from convzoo.data.base import DatasetInfo
    from convzoo.models import create_model
    from convzoo.train import TrainResult

    def fake(config, **_):
        calls.append((config.op, config.seed))
        model = create_model(config.model, num_classes=10, in_chans=1, op=config.op, **config.cfg)
        info = DatasetInfo("digits", "test", 10, 1, (8, 8), tuple("0123456789"), (0.5,), (0.5,))
        accuracy = 0.5 + 0.01 * config.seed + 0.1 * len(config.op) % 0.3
        return TrainResult(model, accuracy, 0.1, [{"epoch": 1, "test_acc": accuracy, "time_s": 0.1}], None, info)

    return fake


@pytest.fixture
def calls(monkeypatch):
    import convzoo.train

    made: list[tuple[str, int]] = []
    monkeypatch.setattr(convzoo.train, "train", _fake_train(made))
    return made


def _config(out: Path, **overrides):
    from convzoo.study import StudyConfig

    return StudyConfig(**{"ops": ("conv", "shift"), "seeds": 2, "epochs": 1, "out": str(out), "repeats": 2,
                          "threads": 1, "progress": False} | overrides)  # fmt: skip


def test_resume_trains_only_what_is_not_finished(tmp_path, calls):
    from convzoo.study import run_study

    run_study(_config(tmp_path))
    assert calls == [("conv", 0), ("conv", 1), ("shift", 0), ("shift", 1)]
    (tmp_path / "rows" / "shift-seed1.json").unlink()  # a run that never wrote its row
    calls.clear()
    rows, paths = run_study(_config(tmp_path, ops=("conv", "shift", "cp"), seeds=3, resume=True))
    assert calls == [("conv", 2), ("shift", 1), ("shift", 2), ("cp", 0), ("cp", 1), ("cp", 2)]
    assert [(r.op, r.status, r.seeds) for r in rows] == [(op, "ok", [0, 1, 2]) for op in ("conv", "shift", "cp")]
    assert json.loads(paths["json"].read_text())["settings"]["partial"] is False
    calls.clear()
    run_study(_config(tmp_path, ops=("conv",), seeds=1))  # no --resume: the study starts over
    assert calls == [("conv", 0)]


def test_the_report_is_rewritten_after_every_run(tmp_path, monkeypatch):
    import convzoo.train
    from convzoo.study import run_study

    seen = []
    fake = _fake_train([])

    def train_and_look(config, **kwargs):
        results = tmp_path / "results.json"
        seen.append(json.loads(results.read_text())["rows"] if results.is_file() else None)
        return fake(config, **kwargs)

    monkeypatch.setattr(convzoo.train, "train", train_and_look)
    run_study(_config(tmp_path, seeds=1, ops=("conv", "shift", "cp")))
    statuses = [None if rows is None else [r["status"] for r in rows] for rows in seen]
    assert statuses == [None, ["ok", "pending", "pending"], ["ok", "ok", "pending"]]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"epochs": 2}, r"epochs: 1 in the folder, 2 given"),
        ({"model": "resnet20"}, r"model: 'mixer_resnet20' in the folder, 'resnet20' given"),
        ({"cfg": {"widths": (8, 8, 8)}}, r"cfg: \{\} in the folder, \{'widths': \[8, 8, 8\]\} given"),
        ({"recipe": "cifar-standard"}, r"batch_size: 32 in the folder, 128 given; epochs: 1 in the folder, 164"),
        ({"lr": 0.2}, r"lr: 0.05 in the folder, 0.2 given"),
    ],
)
def test_resume_refuses_changed_settings_naming_them(tmp_path, calls, change, named):
    from convzoo.study import run_study

    run_study(_config(tmp_path, seeds=1, ops=("conv",)))
    calls.clear()
    overrides = {"epochs": None, **change} if "recipe" in change else change
    with pytest.raises(ValueError, match=rf"study: '{tmp_path}' was started with other settings \(.*{named}"):
        run_study(_config(tmp_path, seeds=1, ops=("conv",), resume=True, **overrides))
    assert calls == []


def test_an_op_that_cannot_stand_in_the_backbone_is_listed_with_the_reason_and_not_trained(tmp_path, calls):
    from convzoo.registry import OPS
    from convzoo.study import StudyConfig, run_study

    assert StudyConfig(ops=("all",)).ops == tuple(OPS.names())
    rows, paths = run_study(_config(tmp_path, ops=("conv", "tcn"), seeds=1))
    assert calls == [("conv", 0)]
    assert rows[1].op == "tcn" and rows[1].status.startswith("skipped: ")
    assert "tcn" in rows[1].status and "dim" in rows[1].status  # a 1-D op in a 2-D backbone
    assert "skipped: " in paths["html"].read_text()


def test_progress_shows_runs_epochs_and_an_eta_from_the_epoch_times(tmp_path, monkeypatch, capsys):
    import convzoo.train
    from convzoo.study import run_study
    from convzoo.study.runner import _Progress

    progress = _Progress(False, total=4, done=0, pending_epochs=8, epochs=2, ranks=2)
    assert progress.eta() is None  # no epoch timed yet
    progress.epoch_done({"time_s": 3.0})
    progress.epoch_done({"time_s": 5.0})
    assert progress.eta() == "0:00:12"  # 6 epochs left × 4 s each, shared by 2 ranks
    fake = _fake_train([])

    def two_epochs(config, on_epoch_end=None, **kwargs):
        for epoch in (1, 2):
            on_epoch_end({"epoch": epoch, "test_acc": 0.5, "time_s": 0.5})
        return fake(config, **kwargs)

    monkeypatch.setattr(convzoo.train, "train", two_epochs)
    run_study(_config(tmp_path, seeds=1, progress=True))
    err = capsys.readouterr().err
    assert "study: 100%" in err and "2/2 [" in err  # the bar over runs
    assert "shift seed 0" in err and "epoch" in err  # the bar over the current run's epochs
    assert "eta=0:00:0" in err
