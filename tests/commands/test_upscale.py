"""``convzoo upscale``: any image size, whole or tiled (equal where the model's receptive field fits the overlap),
PNG/JPEG in, PNG out, clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from convzoo.cli import main
from convzoo.models.sr_tiling import tile_count
from convzoo.train import TrainConfig, train
from convzoo.train.upscale import read_rgb, upscale_file


@pytest.fixture(scope="module")
def espcn_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("espcn")
    options = {"scale": 2, "patch": 48, "sampler": "uniform", "samples": 32}
    train(TrainConfig(task="sr", model="espcn", options=options, epochs=1, batch_size=16, out=str(out), progress=False))
    return out / "checkpoint"


def _photo(path, size=(53, 37), mode="RGB"):
    pixels = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").convert(mode).save(path)
    return path


def test_a_png_of_any_size_is_upscaled_and_tiles_equal_the_whole_image(espcn_checkpoint, tmp_path, capsys):
    source = _photo(tmp_path / "in.png")
    assert main(["upscale", str(espcn_checkpoint), str(source), str(tmp_path / "whole.png"), "--no-progress"]) == 0
    assert "espcn ×2: 53×37 → 106×74 (whole image" in capsys.readouterr().out
    args = ["--tile", "16", "--overlap", "4", "--no-progress"]  # ESPCN's receptive field: 4 LR pixels each side
    assert main(["upscale", str(espcn_checkpoint), str(source), str(tmp_path / "tiled.png"), *args]) == 0
    assert f"({tile_count(37, 53, 16)} tiles" in capsys.readouterr().out
    whole, tiled = (np.asarray(Image.open(tmp_path / n)) for n in ("whole.png", "tiled.png"))
    assert whole.shape == (74, 106, 3) and np.array_equal(whole, tiled)


def test_the_written_png_is_the_model_output_rounded_to_8_bits(espcn_checkpoint, tmp_path):
    from convzoo.train import build_from_checkpoint

    source = _photo(tmp_path / "grey.jpg", size=(20, 30), mode="L")  # a grey JPEG is read as RGB
    upscale_file(espcn_checkpoint, source, tmp_path / "out.png", progress=False)
    model, _ = build_from_checkpoint(espcn_checkpoint)
    with torch.no_grad():
        expected = model(read_rgb(source)[None])[0].clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), expected)


def test_a_progress_bar_counts_the_tiles(espcn_checkpoint, tmp_path, capsys):
    source = _photo(tmp_path / "in.png")
    result = upscale_file(espcn_checkpoint, source, tmp_path / "o.png", tile=20, overlap=4, progress=True)
    assert result.tiles == 6 and "6/6" in capsys.readouterr().err


def test_bad_upscales_exit_2_with_one_line(espcn_checkpoint, digits_checkpoint, tmp_path, exits_2_with_one_line):
    source = _photo(tmp_path / "in.png")
    exits_2_with_one_line(
        ["upscale", str(digits_checkpoint), str(source), str(tmp_path / "o.png")], "is a classify checkpoint"
    )
    exits_2_with_one_line(["upscale", str(espcn_checkpoint), str(tmp_path / "no.png"), "o.png"], "no image file")
    exits_2_with_one_line(["upscale", str(espcn_checkpoint), str(source), str(tmp_path / "o.jpg")], "must end in .png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    exits_2_with_one_line(
        ["upscale", str(espcn_checkpoint), str(tmp_path / "bad.png"), str(tmp_path / "o.png")], "cannot read"
    )
    exits_2_with_one_line(["upscale", str(tmp_path), str(source), str(tmp_path / "o.png")], "not a convzoo checkpoint")
    assert not (tmp_path / "o.png").exists()
