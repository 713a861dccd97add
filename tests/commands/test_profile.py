"""convzoo profile TARGET: an op, a model or a module:factory profiled from the command line; --option KEY=VALUE
read by the one parser; the faster-layout column and --no-layout; bad names and shapes exit 2 with one line."""

from __future__ import annotations

import json
import re

import pytest
import torch

from convzoo.cli import main
from convzoo.profile import MachinePeaks
from convzoo.profile.machine import peaks_path

PEAKS = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=None, copy_gbps=5.0)


@pytest.fixture(autouse=True)
def peaks(cache):
    """Fixture peaks in the private cache, so the CLI never runs the full multi-second measurement."""
    for threads in (1, 2, torch.get_num_threads()):
        path = peaks_path(threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**PEAKS.to_dict(), "threads": threads}))


def test_cli_profiles_an_op_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["profile", "op:shift", "--channels", "16", "--input", "1x8x12x12", "--repeats", "3", "--out", str(out)]
    assert main([*argv, "--threads", "1"]) == 0
    text = capsys.readouterr().out
    assert "op:shift: input 1x8x12x12" in text and "waterline" in text and "(root)" in text
    assert (out / "report.html").is_file() and (out / "profile.json").is_file()
    assert main(["profile", "op:conv", "--input", "1x4x6x6", "--repeats", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["macs"] == 4 * 4 * 9 * 36 and data["layers"][0]["type"] == "Conv"


def test_cli_profiles_a_module_factory(tmp_path, monkeypatch, capsys):
    (tmp_path / "my_nets.py").write_text("import torch\n\ndef build():\n    return torch.nn.Conv2d(2, 3, 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["profile", "my_nets:build", "--input", "1x2x4x4", "--repeats", "2", "--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("name,type,own_ops") and lines[1].startswith("(root),Conv2d,False,1,9,96,192,")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["profile", "resnt18"], "unknown target 'resnt18'; did you mean 'resnet18'"),
        (["profile", "op:shfit"], "unknown op 'shfit'; did you mean 'shift'"),
        (["profile", "op:shift", "--input", "1x8x0x4"], "expected a shape like 1x3x224x224 with positive sizes"),
        (["profile", "op:conv", "--input", "1x4x6x6", "--kernel-size", "2"], "conv: kernel_size must be odd"),
        (["profile", "op:shift", "--option", "speed=1"], "shift: unknown option(s) speed"),
        (["profile", "op:conv", "--input", "1x4"], "needs an input (N, C, *spatial)"),
        (["profile", "nosuchmodule_xyz:build", "--input", "1x2x4x4"], "cannot import 'nosuchmodule_xyz'"),
        (["profile", "os:getcwd", "--input", "1x2x4x4"], "expected a factory returning an nn.Module, got str"),
        (["profile", "os:getcwd"], "a module:factory target needs --input"),
        (["profile", "resnet18", "--input", "1x4x32x32", "--repeats", "1"], "resnet18 cannot run on input 1x4x32x32"),
    ],
)
def test_cli_bad_names_and_shapes_exit_2_with_one_line(argv, message, exits_2_with_one_line):
    exits_2_with_one_line(argv, message)


@pytest.mark.parametrize("spelling", ["false", "False"])
def test_option_values_are_python_or_json_literals(spelling, capsys):
    argv = ["profile", "op:conv", "--input", "1x4x6x6", "--repeats", "2", "--json", "--option", f"bias={spelling}"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 4 * 4 * 9  # no bias: a bool, not a string
    assert main([*argv[:-1], "bias=true"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["params"] == 4 * 4 * 9 + 4


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--option", "rank"], "--option: expected KEY=VALUE such as rank=8, got 'rank'"),
        (["--option", "rank=2", "--option", "rank=3"], "--option: rank is given twice"),
    ],
)
def test_bad_options_exit_2_with_one_line(option, message, exits_2_with_one_line):
    exits_2_with_one_line(["profile", "op:cp", "--input", "1x4x6x6", *option], message)


def test_cli_profile_marks_the_faster_layout_unless_told_not_to(capsys):
    argv = ["profile", "op:conv", "--input", "1x8x12x12", "--repeats", "3", "--threads", "1"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    header = next(line for line in text.splitlines() if line.startswith("layer "))
    row = next(line for line in text.splitlines() if line.startswith("(root) "))
    assert header.endswith("faster layout") and re.search(r"(CL|NCHW) \d+\.\d\d×( !)?$", row)
    assert "layout: input NCHW; whole model" in text and "fingerprint: " in text
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["other_layout"] == "channels_last" and data["layers"][0]["layout_speedup"] > 0
    assert main([*argv, "--no-layout"]) == 0
    text = capsys.readouterr().out
    assert "layout: input" not in text and next(
        line for line in text.splitlines() if line.startswith("(root) ")
    ).endswith("-")
