"""The escn and semiring bench suites run at --quick sizes, their exact pairs agree, and the L-exponent fit."""

from __future__ import annotations

import pytest
import torch

from convzoo.benchmarks.escn import cost_exponent
from convzoo.profile import MachinePeaks
from convzoo.profile.bench import run_suite
from convzoo.registry import SUITES

PEAKS = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=None, copy_gbps=5.0)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))


def test_semiring_suite_runs_quick_and_matches_scipy():
    pytest.importorskip("scipy.ndimage")
    assert SUITES.get("semiring").papers == ("semiring-conv",)
    result = run_suite("semiring", quick=True, threads=1, peaks=PEAKS)
    assert not result.skipped and len(result.results) == 3  # same_output checked each pair before timing
    assert result.results[0].a.macs == 64 * 64 * 9  # one semiring MAC per pixel and element


@pytest.mark.peer
def test_escn_suite_runs_quick_and_its_exact_pairs_agree():
    pytest.importorskip("e3nn", reason="the escn suite compares against e3nn")
    assert SUITES.get("escn").papers == ("escn",)
    result = run_suite("escn", quick=True, threads=1, peaks=PEAKS)
    names = [r.name for r in result.results]
    assert not result.skipped and names[:2] == ["L=2 exact 32x4", "L=3 exact 32x4"] and len(names) == 4
    exponents = cost_exponent(result.to_dict())
    assert set(exponents) == {"escn", "tensor_product"}


def test_cost_exponent_fits_a_power_law():
    cases = [
        {"name": f"L={lmax} exact 8x2", "a": {"median_ms": lmax**3}, "b": {"median_ms": 2 * lmax**6}}
        for lmax in (2, 4, 8)
    ]
    fit = cost_exponent({"cases": [*cases, {"name": "geometry L=8", "a": {}, "b": {}}]})
    assert fit["escn"] == pytest.approx(3.0) and fit["tensor_product"] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="cost_exponent: needs at least two exact cases, got 1"):
        cost_exponent({"cases": cases[:1]})
