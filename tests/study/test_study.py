"""The study: the Pareto front on the mean accuracy, kernels per op, bad options fail before any training, data
loaded once per run, seeds averaged, the deploy form timed beside the training form, the machine named (the
`convzoo study` command: tests/commands/test_study.py)."""

from __future__ import annotations

import csv
import json
import re

import pytest

from convzoo.ops.base import kernel_for
from convzoo.study import StudyConfig, StudyRow
from convzoo.study.report import pareto_front


def test_pareto_front_by_hand():
    rows = [
        StudyRow("a", "ok", test_acc=0.90, latency_ms=1.0),
        StudyRow("b", "ok", test_acc=0.95, latency_ms=2.0),
        StudyRow("c", "ok", test_acc=0.93, latency_ms=3.0),  # slower and less accurate than b
        StudyRow("d", "skipped: x"),
    ]
    assert pareto_front(rows) == ["a", "b"]


def test_kernel_for_ops_that_need_larger_kernels():
    assert kernel_for("conv") == 3
    assert kernel_for("dilated_reparam") == 5 and kernel_for("dilated_reparam", 7) == 7
    assert kernel_for("pix", 3) == 3  # pix needs 1, but a larger request is the caller's to make


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ops": ("conv", "shfit")}, r"unknown op 'shfit'; did you mean 'shift'"),
        ({"ops": ("conv", "conv")}, r"study: ops must be distinct"),
        ({"model": "resnet19"}, r"unknown model 'resnet19'"),
        ({"ops": ()}, r"study: needs at least one op"),
    ],
)
def test_bad_options_fail_before_training(kwargs, message):
    with pytest.raises(ValueError, match=message):
        StudyConfig(**kwargs)


def test_the_study_measures_on_the_data_train_loaded_without_loading_it_again(tmp_path, monkeypatch):
    import importlib

    import convzoo.data
    import convzoo.data.base
    from convzoo.study import run_study

    loads = []
    original = convzoo.data.base.load_dataset

    def counting(name, split="train", root=None, **options):
        loads.append((name, split))
        return original(name, split, root, **options)

    for name in ("convzoo.data", "convzoo.data.base", "convzoo.train.trainer", "convzoo.train.task"):
        try:
            module = importlib.import_module(name)
        except ImportError:  # the trainer's task module, where this tree has it
            continue
        if hasattr(module, "load_dataset"):  # every module that looks it up by name
            monkeypatch.setattr(module, "load_dataset", counting)
    tiny = {"blocks": (1, 1, 1), "widths": (8, 8, 8)}
    config = StudyConfig(ops=("conv",), epochs=1, seeds=1, cfg=tiny, out=str(tmp_path), repeats=3, progress=False)
    (row,), _ = run_study(config)
    assert row.status == "ok" and row.params > 0
    assert loads == [("digits", "train"), ("digits", "test")]


def test_the_front_uses_the_mean_accuracy_not_the_best_seed():
    rows = [
        StudyRow("a", "ok", test_acc=0.89, test_accs=[0.80, 0.98], latency_ms=1.0),
        StudyRow("b", "ok", test_acc=0.92, test_accs=[0.92, 0.92], latency_ms=2.0),
        StudyRow("c", "ok", test_acc=0.895, test_accs=[0.99, 0.80], latency_ms=3.0),  # best seed 0.99, mean 0.895
    ]
    assert pareto_front(rows) == ["a", "b"]


def _fake_train(calls):
    """train() without training: the backbone as built, an accuracy set by the seed (0.90, 0.94, ...)."""
    from convzoo.data.base import DatasetInfo
    from convzoo.models import create_model
    from convzoo.train import TrainResult

    def fake(config, **_):
        calls.append((config.op, config.seed, config.out))
        model = create_model(config.model, num_classes=10, in_chans=1, op=config.op, **config.cfg)
        info = DatasetInfo("digits", "test", 10, 1, (8, 8), tuple("0123456789"), (0.5,), (0.5,))
        accuracy = 0.90 + 0.04 * (config.seed % 3)
        history = [{"epoch": 1, "test_acc": accuracy}]
        return TrainResult(model, accuracy, 0.1, history, None, info)

    return fake


def test_seeds_give_mean_and_spread_over_runs_with_different_seeds(tmp_path, monkeypatch):
    import statistics

    import convzoo.train
    from convzoo.study import run_study

    calls = []
    monkeypatch.setattr(convzoo.train, "train", _fake_train(calls))
    config = StudyConfig(ops=("conv", "dilated_reparam"), seed=4, seeds=2, out=str(tmp_path), repeats=2, progress=False)
    rows, paths = run_study(config)
    runs = tmp_path / "runs"
    assert calls == [
        ("conv", 4, str(runs / "conv")),
        ("conv", 5, str(runs / "conv-seed5")),
        ("dilated_reparam", 4, str(runs / "dilated_reparam")),
        ("dilated_reparam", 5, str(runs / "dilated_reparam-seed5")),
    ]
    for row in rows:
        assert row.status == "ok" and row.seeds == [4, 5]
        assert row.test_accs == pytest.approx([0.94, 0.98])
        assert row.test_acc == pytest.approx(0.96)
        assert row.test_acc_std == pytest.approx(statistics.stdev([0.94, 0.98]))
        assert (row.test_acc_min, row.test_acc_max) == pytest.approx((0.94, 0.98))
        assert [h["seed"] for h in row.history] == [4, 5]
    saved = json.loads(paths["json"].read_text())
    assert saved["pareto_front"] == pareto_front(rows)
    assert [r["test_acc"] for r in saved["rows"]] == pytest.approx([0.96, 0.96])


def test_the_deploy_form_is_timed_beside_the_training_form(tmp_path, monkeypatch):
    import convzoo.train
    from convzoo.study import run_study

    monkeypatch.setattr(convzoo.train, "train", _fake_train([]))
    config = StudyConfig(ops=("dilated_reparam",), seeds=1, out=str(tmp_path), repeats=2, progress=False)
    (row,), paths = run_study(config)
    assert row.status == "ok" and row.test_acc_std is None  # one seed: no spread
    assert row.layout in ("nchw", "channels_last") and set(row.layout_ms) == {"nchw", "channels_last"}
    assert row.latency_ms == row.layout_ms[row.layout] == min(row.layout_ms.values())
    assert row.train_latency_ms > 0 and row.speedup == pytest.approx(row.train_latency_ms / row.latency_ms)
    # re-parameterised: the deploy form computes one 5x5 depthwise kernel where the trained op ran its branches
    assert 0 < row.deploy_macs < row.macs and row.deploy_params < row.params
    with paths["csv"].open() as f:
        (saved,) = csv.DictReader(f)
    assert float(saved["latency_ms"]) > 0 and saved["layout"] == row.layout and float(saved["train_latency_ms"]) > 0


def test_the_report_names_the_cpu_threads_and_torch(tmp_path, monkeypatch):
    import html

    import torch

    import convzoo.train
    from convzoo.profile.machine import cpu_name, fingerprint
    from convzoo.study import run_study

    monkeypatch.setattr(convzoo.train, "train", _fake_train([]))
    config = StudyConfig(ops=("conv",), seeds=1, out=str(tmp_path), threads=1, repeats=2, progress=False)
    _, paths = run_study(config)
    settings = json.loads(paths["json"].read_text())["settings"]
    machine = settings["machine"]
    assert machine["cpu"] == cpu_name() and machine["isa"] == fingerprint(1)["isa"]
    assert machine["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine["threads"] == settings["threads_used"] == 1 and settings["torch"] == torch.__version__
    assert settings["load"]["wall_s"] > 0
    page = paths["html"].read_text()
    line = re.search(r'<p class="machine">Measured on (.*?)\.</p>', page).group(1)
    assert html.escape(cpu_name()) in line and "1 threads" in line and f"torch {torch.__version__}" in line
    for flag in machine["isa"]:  # avx512f, avx512_vnni, amx_tile, ... where the CPU has them
        assert flag in line
    second_panel = r'<img alt="accuracy against parameters and MACs" src="data:image/png;base64,[A-Za-z0-9+/]{100,}'
    assert re.search(second_panel, page)


def test_ctrl_c_stops_the_study_with_the_finished_ops_reported(tmp_path, monkeypatch):
    import dataclasses

    import convzoo.train
    from convzoo.study import StudyInterrupted, run_study

    calls = []
    fake = _fake_train(calls)

    def interrupted_on_the_second_op(config, **kwargs):
        result = fake(config, **kwargs)
        return dataclasses.replace(result, interrupted=True) if config.op == "shift" else result

    monkeypatch.setattr(convzoo.train, "train", interrupted_on_the_second_op)
    config = StudyConfig(ops=("conv", "shift", "cp"), seeds=1, out=str(tmp_path), repeats=2, progress=False)
    with pytest.raises(StudyInterrupted) as stop:
        run_study(config)
    assert (stop.value.op, stop.value.remaining) == ("shift", ("shift", "cp"))
    assert [row.op for row in stop.value.rows] == ["conv"] and [c[0] for c in calls] == ["conv", "shift"]
    saved = json.loads(stop.value.paths["json"].read_text())
    assert [(r["op"], r["status"]) for r in saved["rows"]] == [("conv", "ok"), ("shift", "pending"), ("cp", "pending")]
    assert saved["settings"]["partial"] is True
