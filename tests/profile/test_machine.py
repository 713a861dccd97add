"""Machine peaks: the roofline formula, the per-machine cache (redirected to tmp_path), quick measurement."""

from __future__ import annotations

import json

import pytest
import torch

from convzoo.profile import machine
from convzoo.profile.machine import MachinePeaks, cache_dir, machine_peaks, peaks_path

PEAKS = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=100.0, bf16_gflops=400.0, copy_gbps=10.0)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_roofline_is_the_higher_of_the_two_roofs():
    assert PEAKS.ridge == 10.0
    # 2 GFLOP and 0.1 GB: compute-bound, 2e9 / 100e9 s = 20 ms
    assert PEAKS.roofline_ms(2_000_000_000, 100_000_000) == pytest.approx(20.0)
    assert PEAKS.bound(2_000_000_000, 100_000_000) == "compute"
    # 1 MFLOP and 1 GB: memory-bound, 1e9 / 10e9 s = 100 ms
    assert PEAKS.roofline_ms(1_000_000, 1_000_000_000) == pytest.approx(100.0)
    assert PEAKS.bound(1_000_000, 1_000_000_000) == "memory"
    assert PEAKS.roofline_ms(4_000_000_000, 0, torch.bfloat16) == pytest.approx(10.0)
    assert PEAKS.bound(0, 0) == "none"
    no_bf16 = MachinePeaks.from_dict({**PEAKS.to_dict(), "bf16_gflops": None})
    assert no_bf16.peak_gflops(torch.bfloat16) == 100.0


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    assert cache_dir() == tmp_path
    monkeypatch.delenv("CONVZOO_CACHE_DIR")
    monkeypatch.setattr(machine.sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "convzoo"


def test_quick_peaks_are_measured_once_then_read_from_the_cache(cache, monkeypatch):
    first = machine_peaks(1, quick=True)
    path = peaks_path(1, quick=True)
    assert path.parent == cache / "machine" and path.is_file() and "quick" in path.name
    assert str(1) + "t" in path.name and torch.__version__.split("+")[0] in path.name
    assert first.quick and first.threads == 1 and first.fp32_gflops > 0 and first.copy_gbps > 0
    assert first.fp32_gflops == max(first.kernels["fp32 matmul"], first.kernels["fp32 conv3x3"])
    assert json.loads(path.read_text())["fp32_gflops"] == first.fp32_gflops

    def fail(*args, **kwargs):
        raise AssertionError("measured again although cached")

    monkeypatch.setattr(machine, "measure_peaks", fail)
    assert machine_peaks(1, quick=True) == first
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left no temp file


def test_refresh_and_an_unreadable_cache_measure_again(monkeypatch):
    measured = []
    monkeypatch.setattr(machine, "measure_peaks", lambda threads, quick: measured.append(threads) or PEAKS)
    path = peaks_path(3)
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert machine_peaks(3) == PEAKS
    assert machine_peaks(3) == PEAKS and measured == [3]
    assert machine_peaks(3, refresh=True) == PEAKS and measured == [3, 3]


def test_fingerprint_states_the_cpu_its_isa_and_the_libraries(monkeypatch):
    facts = machine.fingerprint(3)
    assert facts["threads"] == 3 and facts["torch"] == torch.__version__ and facts["cpu"] == machine.cpu_name()
    assert set(facts["isa"]) <= set(machine.ISA_FLAGS) and facts["logical_cpus"] >= facts["usable_cpus"] >= 1
    assert facts["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    if torch.backends.mkldnn.is_available():
        assert facts["onednn"][0].isdigit()
    line = machine.fingerprint_line(facts)
    assert facts["cpu"] in line and "3 threads" in line and f"torch {torch.__version__}" in line
    # without /proc/cpuinfo the ISA comes from torch's own probe
    monkeypatch.setattr(machine, "_cpuinfo", lambda: {})
    facts = machine.fingerprint(1)
    assert facts["isa_source"] == "torch.backends.cpu.get_cpu_capability"
    assert ("avx512f" in facts["isa"]) == (facts["cpu_capability"] == "AVX512")
