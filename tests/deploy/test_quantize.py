"""quantize (S19), FX backend: int8 per-channel weights, per-tensor activations; PTQ and QAT; digits accuracy and
size; the float-kept report; argument errors (the PT2E backend: test_quantize_pt2e.py)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from convzoo.data import load_dataset
from convzoo.deploy import fuse_bn, model_size_bytes, quantize, quantize_with_report
from convzoo.ops.base import create_op
from convzoo.testing import randomize_batchnorm_


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        create_op("asym", 16, 32, 3, stride=2),  # a linear convzoo op: quantised through its deploy form
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def _calib(batches: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(1)
    return [(torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))) for _ in range(batches)]


def _quantized_convs(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if ".quantized" in type(m).__module__ and "Conv" in type(m).__name__]


def test_ptq_weights_are_per_channel_int8_with_the_whitepaper_scale():
    model = randomize_batchnorm_(_net()).eval()
    quantized = quantize(model, _calib())
    convs = _quantized_convs(quantized)
    assert len(convs) == 2
    folded = fuse_bn(model, _calib()[0][0])[0].weight.detach()  # the conv the first quantised conv stands for
    weight = convs[0].weight()
    # the packed tensor reports an affine per-channel scheme; symmetric shows as zero points of 0 (checked below)
    assert weight.dtype == torch.qint8 and weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
    # symmetric per-channel: scale_c = max |w_c| / 127.5 (qint8 spans 255 steps), zero point 0
    expected_scale = folded.abs().amax(dim=(1, 2, 3)) / 127.5
    torch.testing.assert_close(weight.q_per_channel_scales().float(), expected_scale, rtol=1e-5, atol=1e-8)
    assert (weight.q_per_channel_zero_points() == 0).all()
    assert (weight.dequantize() - folded).abs().le(expected_scale.view(-1, 1, 1, 1) / 2 + 1e-7).all()
    # activations: one scale per tensor
    assert isinstance(convs[0].scale, float) and isinstance(convs[0].zero_point, int)


def test_ptq_output_stays_close_to_float():
    model = randomize_batchnorm_(_net()).eval()
    quantized = quantize(model, _calib())
    x = _calib()[0][0]
    with torch.no_grad():
        expected, got = model(x), quantized(x)
    assert got.dtype == torch.float32
    assert (got - expected).abs().max() <= 0.05 * expected.abs().max()


def test_qat_fine_tunes_with_fake_quantisation_then_converts():
    model = _net().eval()
    quantized = quantize(model, _calib(2), mode="qat", qat_epochs=1)
    assert len(_quantized_convs(quantized)) == 2
    x = _calib()[0][0]
    with torch.no_grad():
        assert (quantized(x) - model(x)).abs().max() <= 0.1 * model(x).abs().max()


def test_int8_model_is_about_four_times_smaller():
    model = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)).eval()
    quantized = quantize(model, [torch.randn(2, 64, 8, 8)])
    assert model_size_bytes(quantized) < 0.3 * model_size_bytes(model)


def test_bad_mode_and_empty_loader():
    with pytest.raises(ValueError, match="quantize: mode must be 'ptq' or 'qat', got 'int4'"):
        quantize(_net(), _calib(), mode="int4")
    with pytest.raises(ValueError, match="quantize: calib_loader yielded no batch"):
        quantize(_net(), [])


class _ShapeGate(nn.Module):
    """Python control flow on a shape: FX cannot trace it symbolically."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x) if x.shape[-1] > 4 else x


def test_report_lists_the_module_classes_kept_in_float_and_why():
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), _ShapeGate(), nn.GELU(), nn.Conv2d(8, 8, 3, padding=1)
    ).eval()  # fmt: skip
    quantized, report = quantize_with_report(model, _calib(2))
    assert report.backend == "fx" and report.mode == "ptq" and "eager" in report.executed
    assert report.float_modules == {"_ShapeGate": ["2"], "GELU": ["3"]}
    assert report.float_kept["_ShapeGate"].startswith("FX cannot trace it symbolically")
    assert report.float_kept["GELU"].startswith("no int8 pattern for it in the FX backend config")
    assert len(_quantized_convs(quantized)) == 2  # the convs on either side are still int8
    assert "| GELU | 3 |" in report.markdown()


def test_bad_backend_and_compile():
    with pytest.raises(ValueError, match="quantize: backend must be one of 'fx', 'pt2e', got 'tflite'"):
        quantize(_net(), _calib(), backend="tflite")
    with pytest.raises(ValueError, match="compile=True applies to backend='pt2e' only .*got backend='fx'"):
        quantize(_net(), _calib(), backend="fx", compile=True)
    with pytest.raises(TypeError, match="quantize: compile must be a bool or None, got 'yes'"):
        quantize(_net(), _calib(), backend="pt2e", compile="yes")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["fx", "pt2e"])
def test_digits_accuracy_drops_at_most_one_point(backend):
    if backend == "pt2e":
        pytest.importorskip("torchao")
    torch.manual_seed(0)
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(4):
        for images, labels in DataLoader(train, batch_size=64, shuffle=True):
            loss = nn.functional.cross_entropy(model(images), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()

    def accuracy(m):
        with torch.no_grad():
            return (m(test.images).argmax(1) == test.labels).float().mean().item()

    quantized = quantize(model, DataLoader(train, batch_size=64, shuffle=True), backend=backend)
    assert accuracy(model) > 0.8  # a few epochs of a tiny net; the drop is what is tested
    assert accuracy(quantized) >= accuracy(model) - 0.01
