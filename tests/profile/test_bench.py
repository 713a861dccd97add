"""The bench harness: registered suites, interleaved pairs, reparameterisations checked, cases skipped with reasons,
suites selected by case name, the run's conditions (fingerprint, threads and why, load, other processes' CPU time
and the warning when they shared the cores), table suites (the `convzoo bench` command itself:
tests/commands/test_bench.py)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import pytest
import torch
from torch import nn

import convzoo.benchmarks  # noqa: F401  (registers the suites)
from convzoo.profile import MachinePeaks
from convzoo.profile import bench as bench_module
from convzoo.profile.bench import Case, run_case, run_suite
from convzoo.registry import OPS, SUITES

PEAKS = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=None, copy_gbps=5.0)
SUITE_NAMES = ("inception", "ops", "reparam", "shift")  # this suites; later ones are covered below too


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))


def test_the_four_suites_are_registered():
    assert set(SUITE_NAMES) <= set(SUITES.names())
    assert SUITES.get("inception").papers == ("inceptionnext",) and SUITES.get("reparam").papers == ("unireplknet",)


def test_ops_suite_covers_every_grid_op_against_both_baselines():
    cases = SUITES.get("ops").obj(quick=True)
    grid = {e.name for e in OPS.entries() if e.kind == "grid" and 2 in e.dims}
    shapes = {c.name for c in cases}
    for baseline in ("conv", "dwsep"):
        compared = {c.a.split()[0] for c in cases if c.b == f"{baseline} k3"}
        assert compared == grid - {baseline}
    assert len(cases) == len(shapes) * (2 * len(grid) - 2)


def test_reparam_forms_agree_and_closed_form_counts():
    result = run_suite("reparam", quick=True, threads=1, peaks=PEAKS)
    first = result.results[0]
    channels, side = first.input_shape[1], first.input_shape[2]
    assert first.a.params == channels * 13 * 13 + channels  # merged depthwise 13×13 with bias
    assert first.a.macs == first.input_shape[0] * channels * 169 * side * side


def test_harness_interleaves_and_checks_same_output():
    calls = []

    class Recorder(nn.Module):
        def __init__(self, label: str, scale: float) -> None:
            super().__init__()
            self.label, self.scale = label, scale

        def forward(self, x):
            calls.append(self.label)
            return x * self.scale

    def build():
        return Recorder("A", 1.0), Recorder("B", 1.0), torch.ones(1, 2, 3, 3)

    result = run_case(Case("pair", "a", "b", build), repeats=20, warmup=2, peaks=PEAKS)
    timed = [c for c in calls[2:] if c in "AB"]
    assert "AB" * 20 in "".join(timed) and result.name == "pair"
    mismatch = Case("mismatch", "a", "b", lambda: (Recorder("A", 1.0), Recorder("B", 2.0), torch.ones(1, 1)), True)
    with pytest.raises(AssertionError, match=r"mismatch: a and b should agree but differ by up to 1"):
        run_case(mismatch, repeats=20, warmup=0, peaks=PEAKS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repeats": 19}, r"bench: repeats must be an int ≥ 20 \(medians of fewer mislead\), got 19"),
        ({"warmup": -1}, r"bench: warmup must be an int ≥ 0, got -1"),
        ({"batch": 0}, r"bench: batch must be a positive int, got 0"),
    ],
)
def test_run_suite_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run_suite("shift", quick=True, peaks=PEAKS, **kwargs)


def test_a_case_that_cannot_be_built_is_skipped_with_its_reason(monkeypatch):
    def cases(quick=False, batch=None):
        def build():
            raise ValueError("toy: cannot stand at this shape")

        return [Case("broken", "toy", "conv", build)]

    monkeypatch.setitem(SUITES._entries, "toy", dataclasses.replace(SUITES.get("shift"), name="toy", obj=cases))
    result = run_suite("toy", quick=True, peaks=PEAKS)
    assert result.results == () and result.skipped == (("broken: toy vs conv", "toy: cannot stand at this shape"),)
    assert "Skipped:\n- broken: toy vs conv: toy: cannot stand at this shape" in result.markdown()
    assert bench_module.MIN_REPEATS == 20


def test_select_suites_finds_the_suites_with_a_matching_case_before_measuring():
    from convzoo.profile.bench import select_suites, suite_case_names

    assert select_suites("shift") == ["shift"] and select_suites("all") == SUITES.names()
    assert select_suites("all", only="int8", quick=True) == [
        name for name in SUITES.names() if any("int8" in case for case in suite_case_names(name, quick=True))
    ]
    with pytest.raises(ValueError, match=r"bench shift: no case name contains 'nope' \(cases: "):
        select_suites("shift", only="nope", quick=True)
    with pytest.raises(ValueError, match=r"bench: no case of any suite has a name containing 'nope'"):
        select_suites("all", only="nope", quick=True)


def test_a_run_states_its_machine_threads_and_load():
    result = run_suite("shift", quick=True, threads=1, peaks=PEAKS, only="1x16x8x8")
    data = result.to_dict()
    assert data["fingerprint"]["threads"] == 1 and data["threads_reason"] == "asked for"
    assert {"load_before", "load_after", "others_cpu_s", "own_cpu_s", "wall_s"} <= set(data["load"])
    assert data["load"]["wall_s"] > 0 and data["load_average"] == data["load"]["load_before"]
    header = result.markdown().split("\n| case |")[0]
    assert f"machine: {result.conditions.fingerprint['cpu']}" in header and "threads: 1 (asked for)" in header
    assert "load average" in header


def test_a_busy_process_beside_the_bench_is_warned_about():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it start spinning
        result = run_suite("shift", quick=True, threads=1, peaks=PEAKS, only="1x16x8x8")
    finally:
        spinner.kill()
        spinner.wait()
    assert result.conditions.load.others_cpu_s > 0
    assert "warning: other processes kept" in result.markdown() and result.to_dict()["warning"]


def test_without_threads_the_harness_measures_on_no_more_than_the_idle_cores(monkeypatch):
    from convzoo.profile import timing

    monkeypatch.setattr(timing, "load_average", lambda: 62.5)
    monkeypatch.setattr(timing.os, "cpu_count", lambda: 64)
    result = run_suite("shift", quick=True, peaks=PEAKS, only="1x16x8x8")
    assert result.threads == 1 and "1 idle (of 64 cpus, 63 busy: 1-minute load 62.50)" in result.markdown()


def test_table_suites_measure_rows_and_print_their_notes(monkeypatch):
    from convzoo.profile.bench import Column, Row, TablePlan, TableResult

    def plan(quick=False, batch=None):
        def measure(size, repeats, warmup, peaks):
            if size == 0:
                raise ValueError("toy: nothing to measure")
            return {"size": size, "ms": size / 10}

        rows = [Row(f"row{size}", lambda size=size, **kw: measure(size, **kw)) for size in (0, 1, 2)]
        notes = lambda records: [f"{len(records)} rows measured"]  # noqa: E731
        return TablePlan(rows, (Column("name", "row"), Column("ms", "ms", ".2f")), threads=1, notes=notes)

    monkeypatch.setitem(SUITES._entries, "toyt", dataclasses.replace(SUITES.get("shift"), name="toyt", obj=plan))
    result = run_suite("toyt", peaks=PEAKS)
    assert isinstance(result, TableResult) and result.threads == 1 and "the suite's 1" in result.markdown()
    assert "| row1 | 0.10 |\n| row2 | 0.20 |\n\n2 rows measured" in result.markdown()
    assert result.skipped == (("row0", "toy: nothing to measure"),)
    assert [r["name"] for r in result.to_dict()["rows"]] == ["row1", "row2"]
    assert [r["name"] for r in run_suite("toyt", peaks=PEAKS, only="row2").records] == ["row2"]
