"""convzoo ops, layers and catalog: what is registered and what it covers."""

from __future__ import annotations

import re

import convzoo
from convzoo.cli import main


def test_ops_lists_every_registered_op(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    for name in convzoo.OPS.names():
        assert f"\n{name} " in out
    assert "inception-v3" in out


def test_layers_lists_every_registered_layer(capsys):
    assert main(["layers"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n{name} " in out for name in convzoo.LAYERS.names())


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
    from convzoo.registry import coverage

    assert main(["catalog", "--missing"]) == 0
    out = capsys.readouterr().out
    missing = [entry.label for entry, implemented in coverage() if not implemented]  # S1 was, until op:escn
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("S")]
    assert listed == missing and missing and "S3 " not in out


def test_unknown_section_exits_2_with_one_line(exits_2_with_one_line):
    exits_2_with_one_line(["catalog", "--section", "Z"], "unknown section 'Z'")


def test_tasks_and_datasets_are_listed_from_their_registries(capsys):
    from convzoo.cli import main
    from convzoo.registry import DATASETS, TASKS

    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n{name} " in out for name in TASKS.names())
    assert re.search(r"\nsr +psnr +sr-photos ", out)
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert all(f"\n{name} " in out for name in DATASETS.names())
