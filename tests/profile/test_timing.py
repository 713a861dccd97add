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


def test_choose_threads_keeps_to_the_idle_cores(monkeypatch):
    monkeypatch.setattr(timing_module, "load_average", lambda: 2.3)
    monkeypatch.setattr(timing_module.os, "cpu_count", lambda: 8)
    monkeypatch.setattr(timing_module.torch, "get_num_threads", lambda: 8)
    assert timing_module.choose_threads()[0] == 5  # 8 − ceil(2.3)
    assert timing_module.choose_threads(None, preferred=1)[0] == 1
    assert timing_module.choose_threads(7) == (7, "asked for")
    monkeypatch.setattr(timing_module, "load_average", lambda: 11.0)
    threads, why = timing_module.choose_threads()
    assert threads == 1 and "1 idle (of 8 cpus, 11 busy" in why
    monkeypatch.setattr(timing_module, "load_average", lambda: None)
    assert timing_module.choose_threads() == (8, "default: the fewest of torch's 8, 8 cpus (load average unknown)")


def test_load_warns_only_when_other_processes_used_the_cores():
    from convzoo.profile.timing import SHARED_CORES, Load

    quiet = Load(0.1, 0.2, wall_s=2.0, own_cpu_s=2.0, others_cpu_s=0.01, cpus=2)
    busy = Load(1.5, 2.5, wall_s=2.0, own_cpu_s=1.0, others_cpu_s=3.0, cpus=2)
    assert quiet.warning(1) is None and quiet.others_cores < SHARED_CORES
    assert busy.others_cores == 1.5 and "other processes kept 1.50 of 2 cores busy" in busy.warning(1)
    no_stat = Load(1.5, 1.5, wall_s=1.0, own_cpu_s=1.0, others_cpu_s=None, cpus=2)
    assert "load average was 1.50 on 2 cores" in no_stat.warning(1) and no_stat.warning(0) is None
    assert set(busy.to_dict()) >= {"load_before", "load_after", "others_cpu_s", "others_cores"}
