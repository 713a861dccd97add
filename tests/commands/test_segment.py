"""``convzoo segment CHECKPOINT in.png out.png``: a coloured label map at the input's size; clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import convzoo.data.shapes as shapes
from convzoo.cli import main
from convzoo.data.dense import palette
from convzoo.train import TrainConfig, train


@pytest.fixture(scope="module")
def seg_checkpoint(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(shapes, "LENGTHS", {"train": 16, "test": 8})
        shapes._rendered.cache_clear()
        config = TrainConfig(
            model="fcn32s", task="seg", data="shapes", epochs=1, batch_size=8, cfg={"backbone": "resnet20"},
            out=str(tmp_path_factory.mktemp("seg") / "run"), progress=False,
        )  # fmt: skip
        checkpoint = train(config).checkpoint
    shapes._rendered.cache_clear()
    return checkpoint


def test_segment_writes_a_palette_mask_of_the_input_size(tmp_path, seg_checkpoint, capsys):
    picture = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (23, 41, 3), dtype=np.uint8)).save(picture)
    out = tmp_path / "mask.png"
    assert main(["segment", str(seg_checkpoint), str(picture), str(out)]) == 0
    colours = np.asarray(Image.open(out).convert("RGB"))
    assert colours.shape == (23, 41, 3)
    assert {tuple(c) for c in colours.reshape(-1, 3).tolist()} <= {tuple(c) for c in palette(4).tolist()}
    assert "23×41 label map" in capsys.readouterr().out


def test_segment_refusals(tmp_path, seg_checkpoint, exits_2_with_one_line):
    picture = tmp_path / "in.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(picture)
    exits_2_with_one_line(["segment", str(seg_checkpoint), str(picture), str(tmp_path / "x.jpg")], "must be a .png")
    exits_2_with_one_line(
        ["segment", str(seg_checkpoint), str(tmp_path / "none.png"), str(tmp_path / "o.png")], "no image file"
    )
    (tmp_path / "bad.png").write_bytes(b"not an image")
    exits_2_with_one_line(
        ["segment", str(seg_checkpoint), str(tmp_path / "bad.png"), str(tmp_path / "o.png")], "not a readable image"
    )
