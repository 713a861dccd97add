"""The study under torchrun (gloo, 2 CPU processes): the (op, seed) runs are spread over the ranks, rank 0 gathers
the rows and times every op alone, and the accuracies equal a one-process study's for the same seeds; with
--parallel data each run is trained by both ranks through DDP."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convzoo.cli import main

TINY = ["--cfg", "blocks=(1,1,1)", "--cfg", "widths=(8,8,8)", "--batch-size", "128"]


def _args(out: Path, ops: str) -> list[str]:
    return ["study", "--ops", ops, "--epochs", "1", "--seeds", "1", *TINY, "--repeats", "2", "--threads", "1",
            "--no-progress", "--out", str(out)]  # fmt: skip


def _torchrun(args: list[str], processes: int = 2) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "CONVZOO_DIST_TIMEOUT_S": "120"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)]
    done = subprocess.run([*command, "-m", "convzoo", *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _rows(out: Path) -> dict[str, dict]:
    return {row["op"]: row for row in json.loads((out / "results.json").read_text())["rows"]}


def _runs(out: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in (out / "rows").glob("*-seed*.json")}


def test_two_gloo_ranks_share_the_runs_and_match_one_process(tmp_path):
    spread, alone = tmp_path / "spread", tmp_path / "alone"
    done = _torchrun(_args(spread, "conv,shift"))
    assert "Pareto front" in done.stdout and done.stdout.count("Pareto front") == 1  # rank 0 alone reports
    runs = _runs(spread)
    assert sorted(r["trained_on"] for r in runs.values()) == ["cpu, rank 0 of 2", "cpu, rank 1 of 2"]
    rows = _rows(spread)
    for row in rows.values():
        assert row["status"] == "ok" and row["latency_ms"] > 0
        assert row["timed_on"].endswith("1 threads, rank 0 alone, the other 1 ranks idle")
    assert main(_args(alone, "conv,shift")) == 0
    assert {op: row["test_accs"] for op, row in rows.items()} == {op: r["test_accs"] for op, r in _rows(alone).items()}


@pytest.mark.slow
def test_parallel_data_trains_each_run_on_both_ranks(tmp_path):
    out = tmp_path / "data"
    _torchrun([*_args(out, "conv"), "--parallel", "data"])
    (run,) = _runs(out).values()
    assert run["trained_on"] == "cpu, 2 ranks (DDP)"
    assert run["history"][0]["step"] == math.ceil(1347 / 2 / 128)  # digits' 1,347 training images split in two
    assert _rows(out)["conv"]["status"] == "ok"
