"""convzoo bench and convzoo suites: every suite runs with --quick from the command line and writes its JSON, headed
by the machine's fingerprint, the threads and why, and the load; the roofline table suite lists every grid op;
--only keeps cases by name; usage errors exit 2 with one line."""

from __future__ import annotations

import json

import pytest

from convzoo.cli import main
from convzoo.profile.bench import TablePlan
from convzoo.registry import OPS, SUITES

SUITE_NAMES = ("inception", "ops", "reparam", "shift")  # the first suites; later ones are covered below too
PAIR_SUITES = [name for name in SUITES.names() if not isinstance(SUITES.get(name).obj(quick=True), TablePlan)]


@pytest.mark.parametrize("suite", PAIR_SUITES)
def test_every_suite_runs_quick_from_the_command_line(suite, tmp_path, capsys):
    assert main(["bench", suite, "--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"### convzoo bench {suite} --quick" in out and "| A/B time |" in out and "1 threads" in out
    data = json.loads((tmp_path / f"bench-{suite}-quick.json").read_text())
    assert data["suite"] == suite and data["quick"] and data["threads"] == 1 and data["repeats"] >= 20
    assert "load_average" in data and data["machine"]["quick"]
    assert data["fingerprint"]["threads"] == 1 and data["threads_reason"] == "asked for" and "load" in data
    assert f"machine: {data['fingerprint']['cpu']}" in out and "threads: 1 (asked for); load average" in out
    assert data["cases"], data["skipped"]
    for case in data["cases"]:
        assert case["ratio"] == pytest.approx(case["a"]["median_ms"] / case["b"]["median_ms"])
        assert case["speedup"] == pytest.approx(1 / case["ratio"])
        assert case["a"]["macs"] >= 0 and case["a"]["bytes"] > 0 and case["b"]["params"] >= 0
        if suite in SUITE_NAMES:  # every B of these is a module with weights (a conv baseline)
            assert case["b"]["params"] > 0
    assert out.count("\n| ") == len(data["cases"]) + 1  # header + one line per case


def test_roofline_suite_lists_every_grid_op_from_the_command_line(tmp_path, capsys):
    assert main(["bench", "roofline", "--quick", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "bench roofline: 1 threads (default: the fewest of" in captured.err and "the suite's 1" in captured.err
    data = json.loads((tmp_path / "bench-roofline-quick.json").read_text())
    grid = [e.name for e in OPS.entries() if e.kind == "grid" and 2 in e.dims]
    listed = [row["name"] for row in data["rows"]] + [row["name"] for row in data["skipped"]]
    assert sorted(listed) == sorted(grid) and len(data["rows"]) >= len(grid) - 2 and data["threads"] == 1
    for row in data["rows"]:
        assert row["efficiency"] == pytest.approx(row["roofline_ms"] / row["latency_ms"])
        assert row["bytes"] > 0 and row["form"] and row["goal"] in ("yes", "no")
        assert f"\n| {row['name']} | {row['kernel']} | {row['form']} |" in captured.out
    assert "| op | k | deployed form |" in captured.out and "ops reach 50% of the roofline" in captured.out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bench", "opz", "--quick"], "unknown suite 'opz'; did you mean 'ops'"),
        (["bench"], "name a suite ("),
        (["bench", "shift", "--repeats", "5"], "expected at least 20 repeats, got '5'"),
        (["bench", "shift", "--quick", "--only", "nope"], "bench shift: no case name contains 'nope' (cases: "),
        (["bench", "all", "--quick", "--only", "nope"], "no case of any suite has a name containing 'nope'"),
    ],
)
def test_bench_usage_errors_exit_2_with_one_line(argv, message, exits_2_with_one_line):
    exits_2_with_one_line(argv, message)


def test_suites_are_listed(capsys):
    assert main(["suites"]) == 0 and main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(out.count(f"\n{name} ") == 2 for name in SUITES.names())


def test_only_keeps_the_cases_whose_name_contains_the_text(tmp_path, capsys):
    every = [case.name for case in SUITES.get("binary").obj(quick=True)]
    assert main(["bench", "binary", "--quick", "--threads", "1", "--only", "int8", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "bench-binary-quick.json").read_text())
    kept = [case["name"] for case in data["cases"]]
    assert kept == [name for name in every if "int8" in name] and 0 < len(kept) < len(every)
