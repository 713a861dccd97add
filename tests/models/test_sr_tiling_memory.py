"""Tiled SR inference saves peak memory (slow: full IMDN ×4 on a 256² image, whole and tiled, in fresh processes)."""

import subprocess
import sys

import pytest

_PEAK = """
import resource, sys, torch
from convzoo.models.registration import create_model
from convzoo.models.sr_tiling import tiled_upscale
model = create_model("imdn").eval()
x = torch.rand(1, 3, 256, 256)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.no_grad():
    model(x) if sys.argv[1] == "whole" else tiled_upscale(model, x, tile=32, overlap=8)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.slow
def test_tiled_inference_needs_a_fraction_of_the_peak_memory():
    def growth(mode: str) -> int:  # KiB of peak resident memory the upscale adds, in a fresh process
        run = subprocess.run([sys.executable, "-c", _PEAK, mode], capture_output=True, text=True, check=True)
        return int(run.stdout.strip())

    assert growth("tiled") < 0.5 * growth("whole")
