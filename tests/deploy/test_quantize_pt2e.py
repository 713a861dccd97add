"""quantize(backend="pt2e"): torchao's X86InductorQuantizer, the whitepaper's scheme (S19), lowered or compiled."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.deploy import PT2EInt8, fuse_bn, model_size_bytes, quantize, quantize_with_report, reparameterize
from convzoo.ops.base import create_op
from convzoo.profile.counting import count_macs
from convzoo.testing import randomize_batchnorm_

pytest.importorskip("torchao")


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        create_op("asym", 16, 32, 3, stride=2),  # a linear convzoo op: quantised through its deploy form
        nn.GELU(),  # X86InductorQuantizer has no int8 recipe for it: stays float
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def _calib(batches: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(1)
    return [(torch.randn(8, 1, 16, 16), torch.randint(0, 10, (8,))) for _ in range(batches)]


@pytest.fixture(scope="module")
def lowered():
    model = randomize_batchnorm_(_net()).eval()
    quantized, report = quantize_with_report(model, _calib(), backend="pt2e", compile=False)
    return model, quantized, report


def test_weights_are_per_channel_int8_with_the_whitepaper_scale(lowered):
    model, quantized, _ = lowered
    assert isinstance(quantized, PT2EInt8) and not quantized.compiled
    folded = fuse_bn(model, _calib()[0][0])[0].weight.detach()  # the conv the first int8 weight stands for
    buffers = dict(quantized.reference.named_buffers())
    (name,) = [n for n, b in buffers.items() if b.dtype == torch.int8 and b.shape == folded.shape]
    weight = buffers[name]
    scale = buffers[f"_scale_{name.removeprefix('_frozen_param')}"]
    # symmetric per-channel: scale_c = max |w_c| / 127.5 (int8 spans 255 steps), zero point 0
    expected_scale = folded.abs().amax(dim=(1, 2, 3)) / 127.5
    torch.testing.assert_close(scale, expected_scale, rtol=1e-5, atol=1e-8)
    dequantized = weight.float() * scale.view(-1, 1, 1, 1)
    assert (dequantized - folded).abs().le(expected_scale.view(-1, 1, 1, 1) / 2 + 1e-7).all()
    assert len([b for b in buffers.values() if b.dtype == torch.int8]) == 3  # conv, asym's deploy conv, linear


def test_output_stays_close_to_float(lowered):
    model, quantized, _ = lowered
    x = _calib()[0][0]
    with torch.no_grad():
        expected, got = model(x), quantized(x)
    assert got.dtype == torch.float32
    assert (got - expected).abs().max() <= 0.05 * expected.abs().max()


def test_report_lists_the_module_kept_in_float(lowered):
    _, _, report = lowered
    assert report.backend == "pt2e" and report.mode == "ptq"
    assert list(report.float_kept) == ["GELU", "AdaptiveAvgPool2d"] and report.float_modules["GELU"] == ["4"]
    assert report.float_kept["GELU"] == "X86InductorQuantizer has no standalone int8 recipe for aten.gelu"
    # the quantizer makes a pool int8 only behind an int8 op; behind the float GELU it stays float too
    assert "only after an int8 op" in report.float_kept["AdaptiveAvgPool2d"]
    assert "| GELU | 4 |" in report.markdown()


def test_the_flop_counter_sees_the_reference_graph(lowered):
    model, quantized, _ = lowered
    x = _calib()[0][0]
    assert count_macs(quantized, x) == count_macs(reparameterize(model), x) > 0  # BN folding adds no MACs


def test_int8_model_is_about_four_times_smaller():
    model = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)).eval()
    calibration = [torch.randn(1, 64, 8, 8), torch.randn(3, 64, 8, 8)]  # batch 1 traced, then another batch size
    quantized = quantize(model, calibration, backend="pt2e", compile=False)
    assert model_size_bytes(quantized) < 0.3 * model_size_bytes(model)  # the float originals are not kept


def test_saved_program_reloads_to_the_reference_graph(lowered, tmp_path):
    _, quantized, _ = lowered
    x = torch.randn(3, 1, 16, 16)  # the program keeps a dynamic batch axis
    loaded = torch.export.load(str(quantized.save(tmp_path / "int8.pt2"))).module()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), quantized.reference(x))


def test_lowered_graph_names_the_shape_it_takes(lowered):
    _, quantized, _ = lowered
    with pytest.raises(ValueError, match=r"takes inputs of shape \(8, 1, 16, 16\), got \(3, 1, 16, 16\)"):
        quantized(torch.randn(3, 1, 16, 16))


@pytest.mark.slow  # prepare_qat_pt2e's conv-BN pattern matching takes tens of seconds
def test_qat_fine_tunes_with_fake_quantisation_then_converts():
    model = _net().eval()
    quantized = quantize(model, _calib(2), mode="qat", backend="pt2e", compile=False)
    x = _calib()[0][0]
    with torch.no_grad():
        assert (quantized(x) - model(x)).abs().max() <= 0.1 * model(x).abs().max()


@pytest.mark.slow
def test_compiled_form_matches_the_float_model_at_any_batch():
    model = randomize_batchnorm_(_net()).eval()
    quantized, report = quantize_with_report(model, _calib(), backend="pt2e")
    assert quantized.compiled and "torch.compile" in report.executed
    for x in (_calib()[0][0], torch.randn(3, 1, 16, 16)):  # the second shape compiles again
        with torch.no_grad():
            expected, got = model(x), quantized(x)
        assert (got - expected).abs().max() <= 0.05 * expected.abs().max()
