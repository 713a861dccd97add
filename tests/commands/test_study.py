"""convzoo study: two ops, one epoch, every output written and the table printed; a bad op exits 2."""

from __future__ import annotations

import csv
import json
import re

from convzoo.cli import main


def test_study_two_ops_one_epoch_writes_every_output(tmp_path, capsys):
    out = tmp_path / "study"
    code = main(["study", "--ops", "conv,shift", "--epochs", "1", "--out", str(out), "--repeats", "3", "--no-progress"])
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


def test_cli_bad_op_exits_2(capsys):
    assert main(["study", "--ops", "conv,nope", "--no-progress"]) == 2
    assert "unknown op 'nope'" in capsys.readouterr().err
