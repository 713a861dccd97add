"""The bench harness: registered suites, interleaved pairs, reparameterisations checked, cases skipped with reasons,
suites selected by case name (the `convzoo bench` command itself: tests/commands/test_bench.py)."""

from __future__ import annotations

import dataclasses

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
    from convzoo.profile.bench import select_suites

    assert select_suites("shift") == ["shift"] and select_suites("all") == SUITES.names()
    assert select_suites("all", only="int8", quick=True) == [
        name for name in SUITES.names() if any("int8" in case.name for case in SUITES.get(name).obj(quick=True))
    ]
    with pytest.raises(ValueError, match=r"bench shift: no case name contains 'nope' \(cases: "):
        select_suites("shift", only="nope", quick=True)
    with pytest.raises(ValueError, match=r"bench: no case of any suite has a name containing 'nope'"):
        select_suites("all", only="nope", quick=True)
