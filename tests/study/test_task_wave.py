"""``convzoo study --task wave``: plain CNN against its CP-compressed forms, error against parameters."""

from __future__ import annotations

import json

import pytest

from convzoo.cli import main
from convzoo.study.task_wave import WaveStudyConfig


@pytest.mark.slow
def test_wave_study_reports_error_against_parameters(tmp_path):
    out = tmp_path / "wave"
    argv = ["study", "--task", "wave", "--epochs", "1", "--threads", "1", "--option", "ranks=2,4",
            "--option", "channels=8", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    assert set(rows) == {"persistence", "wavecnn", "wavecnn cp r2", "wavecnn cp r4"}
    assert rows["wavecnn cp r2"]["params"] < rows["wavecnn cp r4"]["params"] < rows["wavecnn"]["params"]
    assert "next-frame error" in (out / "report.html").read_text()


def test_wave_study_settings_are_checked(capsys):
    with pytest.raises(ValueError, match="rank must be"):
        WaveStudyConfig(ranks=(0,))
    assert main(["study", "--task", "wave", "--option", "width=3"]) == 2
    assert "no option 'width'" in capsys.readouterr().err
