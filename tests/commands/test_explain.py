"""``convzoo explain``: a checkpoint and an image give an HTML page with PNGs that Chromium renders; --compare
gives the CKA heat map; bad input exits 2 with one line."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from convzoo.cli import main
from convzoo.data import load_dataset
from convzoo.models import create_model
from convzoo.train import save_checkpoint
from tests.interpret.browser import assert_renders, needs_chromium


def _checkpoint(folder, seed: int):
    torch.manual_seed(seed)
    architecture = {"model": "resnet20", "op": None, "num_classes": 10, "in_chans": 1, "cfg": {"layers": [1, 1, 1]}}
    model = create_model("resnet20", num_classes=10, in_chans=1, layers=(1, 1, 1))
    data = dataclasses.asdict(load_dataset("digits", "test").info)
    data.pop("split")
    return save_checkpoint(folder, model, architecture, data=data)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    return _checkpoint(root / "a", 0), _checkpoint(root / "b", 1)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("image") / "digit.png"
    Image.fromarray((torch.rand(8, 8) * 255).byte().numpy()).save(path)
    return path


@needs_chromium
def test_explain_writes_a_page_that_renders(checkpoints, image, tmp_path, capsys):
    pytest.importorskip("captum")
    out = tmp_path / "page"
    methods = "saliency,occlusion,linear,sensitivity,deconvnet,filters,spectra"
    argv = ["explain", str(checkpoints[0]), str(image), "--method", methods, "--out", str(out), "--quiet"]
    assert main([*argv, "--window", "4", "--stride", "4"]) == 0
    printed = capsys.readouterr().out
    assert "saliency" in printed and f"wrote {out / 'index.html'}" in printed
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"input.png", "saliency.png", "occlusion.png", "linear_row.png", "sensitivity.png"} <= set(pngs)
    page = (out / "index.html").read_text()
    assert "reproduces the output" in page and page.count("data:image/png;base64,") == len(pngs)
    assert_renders(out / "index.html", min_images=len(pngs))


@needs_chromium
def test_compare_draws_the_cka_heat_map(checkpoints, tmp_path):
    out = tmp_path / "compare"
    argv = [
        "explain",
        "--compare",
        *map(str, checkpoints),
        "--method",
        "cka,filters",
        "--out",
        str(out),
        "--count",
        "16",
    ]
    assert main(argv) == 0
    assert (out / "cka.png").read_bytes().startswith(b"\x89PNG")
    assert "symmetric KL" in (out / "index.html").read_text()
    assert_renders(out / "index.html", min_images=1)


def test_bad_input_exits_2_with_one_line(checkpoints, image, tmp_path, exits_2_with_one_line):
    ck = str(checkpoints[0])
    exits_2_with_one_line(["explain", ck, str(image), "--method", "salency"], "unknown method 'salency'; did you mean")
    exits_2_with_one_line(["explain", ck, str(tmp_path / "none.png"), "--method", "linear"], "no image file")
    exits_2_with_one_line(["explain", ck], "give a checkpoint and an image")
    exits_2_with_one_line(["explain", str(tmp_path), str(image)], "is not a convzoo checkpoint")
    exits_2_with_one_line(["explain", "--compare", ck, ck, "--method", "saliency"], "unknown method 'saliency'")
    exits_2_with_one_line(["explain", ck, str(image), "--stride", "0"], "expected a positive integer")
