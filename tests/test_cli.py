"""The convzoo command: listings, catalog coverage, compare, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

import convzoo
from convzoo.cli import main


def test_ops_lists_every_registered_op(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    for name in convzoo.OPS.names():
        assert f"\n{name} " in out
    assert "inception-v3" in out


def test_catalog_lists_foundation_seeds_as_implemented(capsys):
    assert main(["catalog"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines if line.startswith("S")}
    assert len(rows) == 119
    for seed in (
        "S2",
        "S3",
        "S5",
        "S7",
        "S12",
        "S13",
        "S14",
        "S15",
        "S18",
        "S30",
        "S40",
        "S46",
        "S90",
        "S93",
        "S95",
        "S110",
    ):
        assert rows[seed].split()[3] != "-", rows[seed]  # the "implemented by" column
    assert "op:asym" in rows["S3"] and "layer:channel_shuffle" in rows["S46"]
    assert lines[-1].startswith("coverage: ")


def test_catalog_missing_lists_only_unimplemented(capsys):
    assert main(["catalog", "--missing"]) == 0
    out = capsys.readouterr().out
    assert "S1 " in out and "S3 " not in out


def test_compare_prints_ratios(capsys):
    assert main(["compare", "--ops", "conv,shift", "--channels", "8", "--size", "6", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "threads" in out and "time / conv" in out
    assert "\nshift " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bogus"], "invalid choice: 'bogus'"),
        (["ops", "--bogus"], "unrecognized arguments: --bogus"),
        (["compare", "--ops", "shfit"], "unknown op 'shfit'; did you mean 'shift'"),
        (["compare", "--channels", "0"], "expected a positive integer, got '0'"),
        (["catalog", "--section", "Z"], "unknown section 'Z'"),
        (["compare", "--ops", "shift", "--channels", "2", "--repeats", "1"], "needs at least one input channel"),
    ],
)
def test_bad_usage_exits_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sys.exit(main(argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_version_and_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "convzoo", "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"convzoo {convzoo.__version__}"


def test_models_lists_counted_and_published_parameters(capsys):
    assert main(["models", "resnet5*"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("resnet50 "))
    # ResNet-50 at 224x224: 25.56M parameters, 4.09 GMACs (torchvision publishes 25.6M and 4.09 "GFLOPS", i.e. MACs)
    assert row.split()[1:5] == ["classify", "25.56M", "25.56M", "4.09"], row
    assert "resnet56" in out and "resnet18" not in out
