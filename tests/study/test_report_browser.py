"""The study report as a browser shows it: headless Chromium loads it, every image decodes, and a screenshot
of the page is not blank."""

from __future__ import annotations

import subprocess
import tempfile

import numpy as np
from PIL import Image

from convzoo.study import StudyConfig
from tests.interpret.browser import CHROMIUM, assert_renders, needs_chromium
from tests.study.test_study import _fake_train


@needs_chromium
def test_the_study_report_renders_and_its_screenshot_shows_the_plots(tmp_path, monkeypatch):
    import convzoo.train
    from convzoo.study import run_study

    monkeypatch.setattr(convzoo.train, "train", _fake_train([]))
    config = StudyConfig(ops=("conv", "shift"), seeds=2, out=str(tmp_path / "study"), repeats=2, progress=False)
    _, paths = run_study(config)
    assert_renders(paths["html"], min_images=2)  # the Pareto plot and the params/MACs panel
    shot = tmp_path / "screenshot.png"
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={shot}",
                "--window-size=1200,1600",
                paths["html"].as_uri(),
            ],  # fmt: skip
            capture_output=True,
            timeout=120,
            check=True,
        )
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (1600, 1200) and pixels.std() > 10  # text and plots, not an empty page
