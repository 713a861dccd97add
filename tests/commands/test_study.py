"""convzoo study: two ops, one epoch, every output written and the table printed; --seeds trains each op that many
times and prints mean ± std; a bad op exits 2."""

from __future__ import annotations

import csv
import json
import re
import sys

import pytest

from convzoo.cli import main

TINY = ["--cfg", "blocks=(1,1,1)", "--cfg", "widths=(8,8,8)"]  # one block per stage, 8 channels: a run is a second


def test_study_two_ops_one_epoch_writes_every_output(tmp_path, capsys):
    out = tmp_path / "study"
    args = ["study", "--ops", "conv,shift", "--epochs", "1", "--out", str(out), "--repeats", "3", *TINY]
    code = main([*args, "--no-progress"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert [r["op"] for r in results["rows"]] == ["conv", "shift"]
    assert all(r["status"] == "ok" and 0 <= r["test_acc"] <= 1 and r["latency_ms"] > 0 for r in results["rows"])
    assert results["settings"]["epochs"] == 1 and results["settings"]["data"] == "digits"
    with (out / "results.csv").open() as f:
        assert [row["op"] for row in csv.DictReader(f)] == ["conv", "shift"]
    page = (out / "report.html").read_text()
    assert re.search(r'<img alt="accuracy against latency" src="data:image/png;base64,[A-Za-z0-9+/]{100,}', page)
    assert (out / "runs" / "shift" / "checkpoint" / "checkpoint.json").is_file()
    printed = capsys.readouterr().out
    assert "Pareto front" in printed and "shift" in printed
    from convzoo.profile.machine import cpu_name

    assert f"latency timed on cpu ({cpu_name()}), " in printed  # the device and CPU of the latency column
    assert all(r["timed_on"].startswith(f"cpu ({cpu_name()}), ") for r in results["rows"])


def test_cli_bad_op_exits_2(capsys):
    assert main(["study", "--ops", "conv,nope", "--no-progress"]) == 2
    assert "unknown op 'nope'" in capsys.readouterr().err


def test_seeds_two_trains_twice_and_prints_mean_and_spread(tmp_path, capsys):
    import statistics

    out = tmp_path / "study"
    args = ["study", "--ops", "conv", "--epochs", "1", "--seeds", "2", "--out", str(out), "--repeats", "3", *TINY]
    assert main([*args, "--no-progress"]) == 0
    (row,) = json.loads((out / "results.json").read_text())["rows"]
    assert row["seeds"] == [0, 1] and len(row["test_accs"]) == 2
    assert row["test_acc"] == statistics.fmean(row["test_accs"])
    assert row["test_acc_std"] == statistics.stdev(row["test_accs"])
    losses = {h["seed"]: h["train_loss"] for h in row["history"]}
    assert losses[0] != losses[1]  # two runs with different seeds, not one run counted twice
    assert (out / "runs" / "conv" / "checkpoint").is_dir() and (out / "runs" / "conv-seed1" / "checkpoint").is_dir()
    printed = capsys.readouterr().out
    assert re.search(r"conv \*\s+\d+\.\d\d ± \d+\.\d\d", printed) and "mean ± std" in printed
    assert "threads" in printed and "torch" in printed


def test_seeds_has_help_text(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["study", "--help"])
    assert stopped.value.code == 0
    assert re.search(r"--seeds SEEDS\s+train each op this many times", capsys.readouterr().out)


def test_an_interrupted_study_says_where_things_are_and_exits_130(tmp_path, monkeypatch, capsys):
    import convzoo.study
    from convzoo.cli import main as cli_main
    from convzoo.study import StudyInterrupted

    def interrupted(config):
        stop = StudyInterrupted("shift", 0, tmp_path / "runs" / "shift")
        stop.rows, stop.remaining, stop.paths = ["conv-row"], ("shift", "cp"), {"html": tmp_path / "report.html"}
        raise stop

    monkeypatch.setattr(convzoo.study, "run_study", interrupted)
    assert cli_main(["study", "--ops", "conv,shift,cp", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith(
        f"interrupted while training shift (seed 0): its checkpoint is in {tmp_path / 'runs' / 'shift'}"
    )
    assert f"the 1 finished ops are in {tmp_path / 'report.html'}" in err
    assert "remaining ops (shift,cp) with the same command and --resume" in err


def test_every_study_flag_has_help_text():
    from convzoo.cli import build_parser

    parser = build_parser()
    study = parser._subparsers._group_actions[0].choices["study"]
    missing = [a.dest for a in study._actions if a.dest != "help" and not a.help]
    assert missing == [], missing


def test_a_task_without_a_study_exits_2_naming_it_and_the_tasks_that_have_one(capsys):
    from convzoo.commands.study import study_tasks

    assert main(["study", "--task", "nope", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'nope'" in err and err.endswith(", ".join(study_tasks()))
    assert study_tasks()[0] == "classify"


def test_a_task_study_gets_the_parsed_flags(tmp_path, monkeypatch, capsys):
    import convzoo.study
    from convzoo.commands.study import study_tasks

    (tmp_path / "task_demo.py").write_text(
        "def main(args):\n"
        "    print(args.task, args.models, args.option, args.data, args.epochs, args.recipe, args.out)\n"
        "    return 7\n"
    )
    monkeypatch.setattr(convzoo.study, "__path__", [*convzoo.study.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "convzoo.study.task_demo", raising=False)
    assert "demo" in study_tasks()
    argv = ["study", "--task", "demo", "--models", "a,b", "--option", "scale=2", "--option", "x=y", "--epochs", "3"]
    assert main(argv) == 7
    assert capsys.readouterr().out.split() == ["demo", "a,b", "['scale=2',", "'x=y']", "None", "3", "None", "None"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--models", "resnet20,vgg11"], "--models is for task studies"),
        (["--option", "scale=2"], "--option is for task studies"),
        (["--recipe", "imagenet"], "recipe must be one of 'digits-quick', 'cifar-standard', got 'imagenet'"),
        (["--data", "cora"], "dataset 'cora' is a graph dataset"),
        (["--model", "resnet50_sr"], "unknown model"),
    ],
)
def test_classify_study_refuses_flags_it_does_not_take(flags, message, capsys, tmp_path):
    assert main(["study", "--ops", "conv", "--out", str(tmp_path), "--no-progress", *flags]) == 2
    assert message in capsys.readouterr().err


def test_recipe_and_overrides_reach_every_run(tmp_path, monkeypatch):
    import convzoo.train

    seen = []

    def fake(config, **_):
        seen.append(config)
        raise ValueError("stop here")  # recorded as a skipped op; the config is what this test reads

    monkeypatch.setattr(convzoo.train, "train", fake)
    args = ["study", "--ops", "conv", "--recipe", "cifar-standard", "--lr", "0.2", "--seeds", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path)]) == 2  # no op finished
    (config,) = seen
    assert (config.epochs, config.batch_size, config.lr, config.weight_decay) == (164, 128, 0.2, 1e-4)
    assert (config.momentum, config.warmup_epochs, config.label_smoothing, config.optimizer) == (0.9, 0.0, 0.0, "sgd")


def test_an_error_about_the_op_skips_it_and_any_other_error_stops_the_study(tmp_path, monkeypatch, capsys):
    import convzoo.train

    def refuse(config, **_):
        raise ValueError(f"mixer_resnet20: op {config.op!r} cannot replace the conv at stages.0.0.mixer1: no")

    monkeypatch.setattr(convzoo.train, "train", refuse)
    args = ["study", "--ops", "conv,shift", "--seeds", "1", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 2  # no op finished
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    expected = "skipped: mixer_resnet20: op {!r} cannot replace the conv at stages.0.0.mixer1: no"
    assert [r["status"] for r in rows] == [expected.format(op) for op in ("conv", "shift")]

    def no_data(config, **_):
        raise ValueError("cifar10: needs a data folder (--data-root / root=)")

    monkeypatch.setattr(convzoo.train, "train", no_data)
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    assert capsys.readouterr().err == "convzoo study: error: cifar10: needs a data folder (--data-root / root=)\n"
