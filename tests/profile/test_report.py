"""Reports: every file is written, the HTML references images that exist, JSON/CSV carry the rows, atomic writes."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
import torch
from torch import nn

from convzoo.profile import MachinePeaks, profile
from convzoo.profile import report as report_module
from convzoo.profile.report import format_table, to_csv, write_report

PEAKS = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=200.0, copy_gbps=5.0)


@pytest.fixture(scope="module")
def result():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4)
    )
    return profile(model, (2, 3, 6, 6), repeats=3, warmup=1, peaks=PEAKS, name="tiny")


def test_report_files_exist_and_the_html_references_images_that_exist(result, tmp_path):
    written = write_report(result, tmp_path / "out")
    assert set(written) == {"json", "csv", "roofline", "efficiency_gap", "waterline", "html"}
    assert all(path.is_file() and path.stat().st_size > 0 for path in written.values())
    page = written["html"].read_text()
    images = re.findall(r'<img src="([^"]+)"', page)
    assert sorted(images) == ["efficiency_gap.png", "roofline.png", "waterline.png"]
    for image in images:
        assert (tmp_path / "out" / image).read_bytes().startswith(b"\x89PNG")
    assert "tiny" in page and "waterline" in page and "<td>0</td>" in page
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_json_and_csv_carry_every_row(result):
    data = json.loads(report_module.to_json(result))
    assert data["totals"]["macs"] == result.macs == 2 * (8 * 27 * 36 + 8 * 36 * 4)
    assert data["totals"]["waterline_ms"] == pytest.approx(result.waterline_ms)
    assert data["machine"]["cpu"] == "test cpu" and len(data["layers"]) == len(result.layers)
    rows = list(csv.DictReader(io.StringIO(to_csv(result))))
    assert [r["name"] for r in rows] == [layer.name for layer in result.layers]
    assert int(rows[0]["macs"]) == 2 * 8 * 27 * 36 and rows[0]["bound"] in ("compute", "memory")


def test_table_shows_rows_totals_and_the_machine(result):
    text = format_table(result)
    for expected in ("tiny: input 2x3x6x6 float32", "machine: test cpu", "FLOP/B", "waterline", "BatchNorm2d"):
        assert expected in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    rows = lines[header + 2 : header + 2 + len(result.layers)]
    assert [row.split()[0] for row in rows] == [layer.name for layer in result.layers] and lines[
        len(rows) + header + 2
    ] == ""
    assert lines[header - 1] == "" and any(line.startswith("fingerprint: ") for line in lines[:header])
    assert lines[header].endswith("faster layout") and "layout: input NCHW; whole model" in text


def test_a_waterline_above_the_latency_is_flagged(result):
    slow_machine = MachinePeaks("slow", 1, torch.__version__, fp32_gflops=1e-6, bf16_gflops=None, copy_gbps=1e-6)
    hopeless = profile(nn.Linear(4, 4), (1, 4), repeats=2, warmup=1, peaks=slow_machine)
    assert "warning: the waterline exceeds the measured latency" in format_table(hopeless)


def test_out_must_be_a_directory(result, tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(ValueError, match=r"profile: --out must be a directory, got the file"):
        write_report(result, tmp_path / "taken")
