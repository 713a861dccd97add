"""convzoo compare: operators side by side at one shape, ratios to the first."""

from __future__ import annotations

import pytest

from convzoo.cli import main


def test_compare_prints_ratios(capsys):
    assert main(["compare", "--ops", "conv,shift", "--channels", "8", "--size", "6", "--repeats", "3"]) == 0
    out = capsys.readouterr().out
    assert "threads" in out and "time / conv" in out
    assert "\nshift " in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "--ops", "shfit"], "unknown op 'shfit'; did you mean 'shift'"),
        (["compare", "--channels", "0"], "expected a positive integer, got '0'"),
        (["compare", "--ops", "shift", "--channels", "2", "--repeats", "1"], "needs at least one input channel"),
    ],
)
def test_bad_usage_exits_2_with_one_line(argv, message, exits_2_with_one_line):
    exits_2_with_one_line(argv, message)
