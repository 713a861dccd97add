"""convzoo bench deploy --quick: every deploy form builds, the equivalent ones agree, the suite writes its table."""

from __future__ import annotations

import json

import pytest

import convzoo.benchmarks  # noqa: F401  (registers the suites)
from convzoo.benchmarks.deploy import COMPILED, PAIRS
from convzoo.cli import main
from convzoo.registry import SUITES


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))


def test_registered_with_every_pair_per_model_and_batch():
    cases = SUITES.get("deploy").obj(quick=False)
    assert len(cases) == 3 * 2 * len(PAIRS)
    assert {c.name for c in cases} >= {"resnet18 b8", "resnet50 b1", "convnext_tiny b8"}


def test_quick_suite_runs_from_the_command_line(tmp_path, capsys):
    assert (
        main(
            ["bench", "deploy", "--quick", "--threads", "1", "--repeats", "20", "--warmup", "0", "--out", str(tmp_path)]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "### convzoo bench deploy --quick" in out and "| resnet18 b2 | int8 | fp32 eager |" in out
    data = json.loads((tmp_path / "bench-deploy-quick.json").read_text())
    quick_pairs = [pair for pair in PAIRS if COMPILED not in pair]  # the compiled optimize runs in full runs only
    assert len(quick_pairs) == len(PAIRS) - 2
    assert data["suite"] == "deploy" and len(data["cases"]) + len(data["skipped"]) == len(quick_pairs)
    # the equivalent forms were checked to agree before timing, so none of them was skipped for disagreeing
    assert not [s for s in data["skipped"] if "should agree" in json.dumps(s)]
