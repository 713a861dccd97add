"""``convzoo study --task sr``: rows against bicubic and a report; bad options exit 2; the sr task's bicubic residual
starts at bicubic, survives a checkpoint, ``convzoo upscale``, the deploy form and ONNX."""

import csv
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from convzoo.cli import main
from convzoo.models import create_model
from convzoo.models.sr_residual import BicubicResidual
from convzoo.registry import MODELS
from convzoo.train import TrainConfig, build_from_checkpoint, train
from convzoo.train.task import get_task
from convzoo.train.tasks.sr import OWN_SKIP

SR_MODELS = [e.name for e in MODELS.entries() if e.kind == "sr"]


def _study(tmp_path, *extra):
    argv = [
        "study", "--task", "sr", "--models", "espcn,span", "--option", "size=tiny", "--option", "scale=2",
        "--option", "samples=16", "--option", "patch=48", "--option", "latency_size=16", "--repeats", "2",
        "--threads", "1", "--out", str(tmp_path / "study"), "--no-progress", *extra,
    ]  # fmt: skip
    return main(argv)


def test_the_study_writes_rows_against_bicubic_and_a_report(tmp_path, capsys):
    assert _study(tmp_path, "--option", "onnx=false") == 0
    results = json.loads((tmp_path / "study" / "results.json").read_text())
    rows = {(r["model"], r["scale"]): r for r in results["rows"]}
    assert set(rows) == {("bicubic", 2), ("espcn", 2), ("span", 2)}
    bicubic = rows["bicubic", 2]
    assert bicubic["psnr"] == bicubic["psnr_bicubic"] and bicubic["psnr_gain"] == 0.0
    for name in ("espcn", "span"):
        row = rows[name, 2]
        assert row["status"] == "ok" and row["residual"] == "bicubic"
        assert row["psnr_gain"] == row["psnr"] - row["psnr_bicubic"]  # the gain is the difference, nothing else
        assert row["ssim_gain"] == row["ssim"] - row["ssim_bicubic"]
        assert row["psnr_bicubic"] == pytest.approx(bicubic["psnr"])  # the same held-out images as bicubic's row
        assert row["latency_ms"] > 0 and row["layout"] in ("nchw", "channels_last") and row["ort_ms"] is None
    assert rows["span", 2]["params"] == sum(
        p.numel() for p in create_model("span", scale=2, **MODELS.get("span").info.test_cfg).parameters()
    )
    with (tmp_path / "study" / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [(r["model"], r["scale"]) for r in table] == [("bicubic", "2"), ("espcn", "2"), ("span", "2")]
    page = (tmp_path / "study" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # the Pareto plot and the row of crops
    assert "torch " in page and "1 threads" in page and "load" in page and "bicubic residual" in page
    out = capsys.readouterr().out
    assert "espcn" in out and "ORT ms" in out and "load" in out


def test_dsclora_fine_tunes_adapters_over_a_base_trained_first_distilled_from_the_span_row(tmp_path):
    argv = [
        "study", "--task", "sr", "--models", "dsclora,span", "--option", "size=tiny", "--option", "scale=2",
        "--option", "samples=16", "--option", "patch=48", "--option", "latency_size=16", "--option", "onnx=false",
        "--repeats", "2", "--threads", "1", "--out", str(tmp_path / "study"), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    rows = {r["model"]: r for r in json.loads((tmp_path / "study" / "results.json").read_text())["rows"]}
    assert re.fullmatch(
        r"adapters over a span base \(8 ch, 2 blocks\) trained first \(its gain [+-]\d\.\d{3} dB\), "
        r"distilled from the span row",
        rows["dsclora"]["recipe"],
    )
    assert rows["span"]["recipe"] == "" and rows["dsclora"]["history"][-1]["train_affinity"] > 0
    runs = tmp_path / "study" / "runs"
    tuned, _ = build_from_checkpoint(runs / "dsclora-x2-seed0" / "checkpoint")
    base, _ = build_from_checkpoint(runs / "dsclora-x2-seed0" / "base" / "checkpoint")
    # the base's kernels sit frozen under the adapters, which moved
    assert torch.equal(tuned.net.blocks[0].c1.conv.weight, base.net.blocks[0].c1.weight)
    assert tuned.net.blocks[0].c1.lora_B.abs().sum() > 0
    assert "dsclora ×2: adapters over a span base" in (tmp_path / "study" / "report.html").read_text()


@pytest.mark.slow
def test_the_study_times_onnxruntime_beside_the_deploy_form(tmp_path):
    assert _study(tmp_path) == 0
    rows = json.loads((tmp_path / "study" / "results.json").read_text())["rows"]
    for row in rows:
        assert row["ort_ms"] > 0 and row["latency_ms"] > 0, row
        assert row["onnx_max_abs_diff"] < 1e-4 and row["ort_over_deploy"] == row["ort_ms"] / row["latency_ms"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--models", "nope"], "nope"),
        (["--models", "resnet20"], "is a classify model, not a super-resolution one"),
        (["--option", "scale=5"], "scale must be one of 2, 3, 4, got 5"),
        (["--option", "scales=(2, 2)"], "scales must be distinct"),
        (["--option", "colour=1"], "no option 'colour'"),
        (["--option", "scale=2", "--option", "scales=(2, 4)"], "not both"),
        (["--option", "residual=1"], "residual must be true or false"),
        (["--data", "digits"], "not an sr dataset"),
    ],
)
def test_bad_options_exit_2_with_one_line(options, message, tmp_path, capsys):
    assert main(["study", "--task", "sr", "--out", str(tmp_path), "--no-progress", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "results.json").exists()


# --- the sr task's residual option -------------------------------------------------------------------------------


def _tiny(name, scale=2):
    return create_model(name, scale=scale, **MODELS.get(name).info.test_cfg)


@pytest.mark.parametrize("name", ["espcn", "carn", "dsclora", "a2n", "scnet_t"])
def test_a_residual_whose_last_layer_is_zero_returns_bicubic_exactly(name):
    x = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    bicubic = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    wrapped = BicubicResidual(_tiny(name).double(), own_skip=OWN_SKIP.get(name)).eval()
    assert not torch.equal(wrapped(x), bicubic)  # a random last layer adds something
    last = [m for m in wrapped.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    assert torch.equal(wrapped(x), bicubic)
    # the task's residual starts there: its last conv is zero at creation
    created = get_task("sr").create(
        {"model": name, "scale": 2, "cfg": MODELS.get(name).info.test_cfg, "residual": True}
    )
    assert isinstance(created, BicubicResidual)
    assert torch.equal(created.double().eval()(x), bicubic)


@pytest.mark.parametrize("name", SR_MODELS)
def test_own_skip_names_exactly_the_models_that_add_an_interpolated_input(name):
    """With every weight zero a model returns its own skip: bilinear(x) for A2N and SCNet, not for the others."""
    model = _tiny(name).double().eval()
    for parameter in model.parameters():
        parameter.data.zero_()
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    bilinear = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    with torch.no_grad():
        assert torch.allclose(model(x), bilinear, atol=1e-12) == (name in OWN_SKIP)


def test_the_residual_swaps_a_models_own_bilinear_skip_for_bicubic():
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64)
    net = _tiny("a2n").double().eval()
    wrapped = BicubicResidual(net, own_skip="bilinear").eval()
    with torch.no_grad():
        swap = F.interpolate(x, scale_factor=2, mode="bicubic") - F.interpolate(x, scale_factor=2, mode="bilinear")
        torch.testing.assert_close(wrapped(x), net(x) + swap, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="own_skip must be one of None, 'bilinear', got 'nearest'"):
        BicubicResidual(net, own_skip="nearest")


def test_the_residual_round_trips_through_a_checkpoint_upscale_deploy_form(tmp_path):
    from convzoo.deploy.layout import deploy_form
    from convzoo.train.upscale import read_rgb

    options = {"scale": 2, "patch": 48, "sampler": "uniform", "samples": 16, "residual": True}
    result = train(
        TrainConfig(task="sr", model="espcn", options=options, epochs=1, batch_size=8, out=str(tmp_path / "run"),
                    progress=False)
    )  # fmt: skip
    model, checkpoint = build_from_checkpoint(tmp_path / "run" / "checkpoint")
    assert checkpoint.architecture["residual"] is True and checkpoint.describe() == "espcn ×2 + bicubic residual (sr)"
    assert isinstance(model, BicubicResidual)
    x = torch.rand(1, 3, 13, 10)
    trained = result.model.eval()
    with torch.no_grad():
        expected = trained(x)
        assert not torch.allclose(expected, F.interpolate(x, scale_factor=2, mode="bicubic"))  # it learned something
        torch.testing.assert_close(model(x), expected)
        deployed, _ = deploy_form(model, x, repeats=1, warmup=0)
        torch.testing.assert_close(deployed(x), expected, rtol=1e-4, atol=1e-5)
    pixels = np.random.default_rng(0).integers(0, 256, (10, 13, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(tmp_path / "in.png")
    assert main(["upscale", str(tmp_path / "run" / "checkpoint"), str(tmp_path / "in.png"), str(tmp_path / "out.png"),
                 "--no-progress"]) == 0  # fmt: skip
    with torch.no_grad():
        want = trained(read_rgb(tmp_path / "in.png")[None])[0].clamp(0, 1).mul(255).round().to(torch.uint8)
    got = torch.from_numpy(np.array(Image.open(tmp_path / "out.png"))).permute(2, 0, 1)
    assert got.shape == (3, 20, 26) and (got.int() - want.int()).abs().max() <= 1  # float rounding at .5


@pytest.mark.slow
def test_the_residual_exports_to_onnx_with_its_bicubic_term(tmp_path):
    from convzoo.deploy.export import export_onnx

    model = get_task("sr").create(
        {"model": "carn", "scale": 4, "cfg": MODELS.get("carn").info.test_cfg, "residual": True}
    )
    torch.nn.init.normal_([m for m in model.modules() if isinstance(m, torch.nn.Conv2d)][-1].weight, std=0.05)
    x = torch.rand(1, 3, 12, 10)
    exported = export_onnx(model.eval(), tmp_path / "carn.onnx", x)
    assert exported.max_abs_diff < 1e-4


def test_example_windows_are_the_aligned_lr_and_hr_slices():
    from convzoo.study.task_sr import _crops

    lr, hr = torch.rand(3, 10, 13), torch.rand(3, 21, 27)  # HR one pixel taller and wider than 2 × LR
    windows = _crops(lr, hr, 2, 8)
    assert len(windows) == 2 * 3  # 4-pixel LR windows: 2 rows, 3 columns, the remainder left out
    for k, (low, high) in enumerate(windows):
        i, j = divmod(k, 3)
        assert torch.equal(low[0], lr[:, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4])
        assert torch.equal(high[0], hr[:, 8 * i : 8 * i + 8, 8 * j : 8 * j + 8])
    small_lr, small_hr = torch.rand(3, 3, 5), torch.rand(3, 6, 10)
    [(low, high)] = _crops(small_lr, small_hr, 2, 8)
    assert torch.equal(low[0], small_lr) and torch.equal(high[0], small_hr)
