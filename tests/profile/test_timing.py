"""Timing: statistics of known samples, the interleaved order, thread setting restored, bad arguments."""

from __future__ import annotations

import pytest
import torch

from convzoo.profile import timing as timing_module
from convzoo.profile.timing import interleaved, load_average, measure, summarize, use_threads


def test_summarize_known_samples():
    timing = summarize([5.0, 1.0, 3.0, 2.0, 4.0], threads=3)
    assert (timing.median_ms, timing.min_ms, timing.repeats, timing.threads) == (3.0, 1.0, 5, 3)
    # inclusive quartiles of 1..5 are 2 and 4
    assert (timing.q1_ms, timing.q3_ms, timing.iqr_ms) == (2.0, 4.0, 2.0)
    single = summarize([7.0])
    assert (single.median_ms, single.iqr_ms, single.threads) == (7.0, 0.0, torch.get_num_threads())


def test_interleaved_runs_a_b_a_b_after_warmup():
    calls = []
    timings = interleaved([lambda: calls.append("A"), lambda: calls.append("B")], repeats=4, warmup=2)
    assert calls == ["A", "B"] * 6
    assert [t.repeats for t in timings] == [4, 4]
    assert all(t.median_ms >= t.min_ms >= 0 for t in timings)


def test_measure_times_only_the_calls_after_warmup(monkeypatch):
    clock = [0.0]
    durations = iter([100.0, 100.0, 0.005, 0.003, 0.004, 0.002, 0.001])  # seconds: 2 warm-up calls, then 5
    monkeypatch.setattr(timing_module.time, "perf_counter", lambda: clock[0])

    def call():
        clock[0] += next(durations)

    timing = measure(call, repeats=5, warmup=2)
    assert timing.median_ms == pytest.approx(3.0) and timing.min_ms == pytest.approx(1.0)
    assert timing.q1_ms == pytest.approx(2.0) and timing.q3_ms == pytest.approx(4.0)


def test_use_threads_sets_and_restores():
    before = torch.get_num_threads()
    with use_threads(2) as used:
        assert used == torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with use_threads(None) as used:
        assert used == before


def test_load_average_is_reported_where_the_os_has_one():
    load = load_average()
    assert load is None or load >= 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: measure(lambda: None, repeats=0), r"timing: repeats must be an int ≥ 1, got 0"),
        (lambda: measure(lambda: None, warmup=-1), r"timing: warmup must be an int ≥ 0, got -1"),
        (lambda: interleaved([]), r"timing: nothing to time"),
        (lambda: summarize([]), r"timing: no samples"),
        (lambda: use_threads(0).__enter__(), r"timing: threads must be a positive int or None, got 0"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()
