"""convzoo machine: this machine's measured peaks and fingerprint, as a table and as JSON (quick sizes, private
cache)."""

from __future__ import annotations

import json

from convzoo.cli import main


def test_machine_command_prints_the_peaks(capsys):
    assert main(["machine", "--quick", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    for field in (
        "isa",
        "oneDNN",
        "cpus",
        "fp32 compute roof",
        "fp32 matmul",
        "fp32 conv3x3",
        "copy bandwidth",
        "ridge point",
        "quick sizes",
    ):
        assert field in out
    assert main(["machine", "--quick", "--threads", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["threads"] == 1 and data["quick"] and data["ridge"] > 0
    assert data["fingerprint"]["threads"] == 1 and data["fingerprint"]["cpu"] == data["cpu"]
