"""convzoo bench sequence: the suite runs at --quick sizes; its FFT and direct forms agree; generators agree."""

from __future__ import annotations

import json

import pytest
import torch

from convzoo.benchmarks.sequence import RecomputeGenerator, RecurrentGenerator, sequence_cases
from convzoo.cli import main
from convzoo.deploy.distill import distill
from convzoo.ops.base import create_op
from convzoo.registry import SUITES


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))


def test_suite_runs_quick_from_the_command_line(tmp_path, capsys):
    assert SUITES.get("sequence").papers == ("hyena-distill", "tcn-compressor", "tcnca")
    assert main(["bench", "sequence", "--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "### convzoo bench sequence --quick" in out
    data = json.loads((tmp_path / "bench-sequence-quick.json").read_text())
    names = [case["name"] for case in data["cases"]]
    assert not data["skipped"], data["skipped"]
    assert names == [
        "fft-64",
        "fft-256",
        "tcn-vs-fft-64",
        "generate-32",
        "steps-vs-offline-32",
        "steps-vs-offline-64",
        "next-token-at-64",
        "next-token-at-256",
        "tcnca-64",
        "tcnca-128",
    ]
    for case in data["cases"]:
        assert case["ratio"] == pytest.approx(case["a"]["median_ms"] / case["b"]["median_ms"])


def test_full_cases_cover_the_issue_sizes_without_building_them():
    names = [case.name for case in sequence_cases()]
    assert names[:4] == ["fft-1024", "fft-4096", "fft-16384", "fft-65536"]
    assert "generate-4096" in names and "next-token-at-65536" in names and "steps-vs-offline-65536" in names
    assert names[-3:] == ["tcnca-1024", "tcnca-4096", "tcnca-8192"]
    assert all(case.same_output for case in sequence_cases() if case.name.startswith("fft-"))


def test_generators_agree_with_the_offline_convolutions():
    torch.manual_seed(0)
    op = create_op("long_conv", 3, 3, 40, dim=1).double()
    x = torch.randn(1, 3, 40, dtype=torch.float64)
    with torch.no_grad():
        recompute = RecomputeGenerator(op.filters(), op.skip)
        torch.testing.assert_close(recompute(x), op(x), rtol=1e-10, atol=1e-10)
        distilled = distill(op, 6)
        torch.testing.assert_close(RecurrentGenerator(distilled)(x), distilled(x), rtol=1e-10, atol=1e-10)
