"""optimize: FFT convolution against a loop reference; per-layer choices stay equal to the original model."""

from __future__ import annotations

import itertools
import sys

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from convzoo.deploy import FFTConv, fft_conv, optimize_with_report
from convzoo.deploy.optimize import CompiledGraph, LinearAsConv
from convzoo.models import create_model
from convzoo.ops.base import create_op
from convzoo.registry import MODELS
from convzoo.testing import randomize_batchnorm_


def _loop_conv(x, weight, bias, padding, groups):
    """Cross-correlation by explicit sums over kernel offsets (float64), any dim."""
    dim = weight.dim() - 2
    x = nn.functional.pad(x, [p for pad in reversed(padding) for p in (pad, pad)])
    kernel = weight.shape[2:]
    out_size = [s - k + 1 for s, k in zip(x.shape[2:], kernel, strict=True)]
    c_out, c_per_group = weight.shape[:2]
    out_per_group = c_out // groups
    y = torch.zeros(x.shape[0], c_out, *out_size, dtype=x.dtype)
    for o in range(c_out):
        g = o // out_per_group
        for c in range(c_per_group):
            for offset in itertools.product(*(range(k) for k in kernel)):
                window = x[
                    (
                        slice(None),
                        g * c_per_group + c,
                        *(slice(d, d + n) for d, n in zip(offset, out_size, strict=True)),
                    )
                ]
                y[:, o] += weight[(o, c, *offset)] * window
        if bias is not None:
            y[:, o] += bias[o]
    assert y.dim() == dim + 2
    return y


@pytest.mark.parametrize(
    "dim, c_in, c_out, kernel, groups",
    [(1, 4, 6, 15, 2), (2, 3, 3, 5, 3), (2, 2, 4, 15, 1), (3, 2, 2, 3, 1)],
)
def test_fft_conv_matches_the_loop_reference(dim, c_in, c_out, kernel, groups):
    torch.manual_seed(0)
    x = torch.randn(2, c_in, *([9] * dim), dtype=torch.float64)
    weight = torch.randn(c_out, c_in // groups, *([kernel] * dim), dtype=torch.float64)
    bias = torch.randn(c_out, dtype=torch.float64)
    padding = (kernel // 2,) * dim
    torch.testing.assert_close(fft_conv(x, weight, bias, padding, groups), _loop_conv(x, weight, bias, padding, groups))


def test_fft_module_strides_like_the_conv():
    conv = nn.Conv2d(4, 4, 15, stride=2, padding=7, groups=4)
    x = torch.randn(2, 4, 11, 10)
    with torch.no_grad():
        torch.testing.assert_close(FFTConv(conv)(x), conv(x), rtol=1e-4, atol=1e-4)


def test_optimize_chooses_per_layer_and_stays_equivalent():
    torch.manual_seed(0)
    model = randomize_batchnorm_(
        nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 15, padding=7, groups=8),  # FFT candidate
            create_op("dilated_reparam", 8, 8, 5),  # dense-kernel candidate
            nn.ReLU(),
        )
    ).eval()
    x = torch.randn(2, 3, 16, 16)
    optimized, plan = optimize_with_report(model, x, repeats=2)
    assert set(plan.layers) == {"2", "3"}
    assert set(plan.layers["2"]) == {"as trained", "fft"} and set(plan.layers["3"]) == {"as trained", "dense"}
    assert set(plan.layers_cl) == {"2", "3"} and set(plan.layers_cl["3"]) == {"as trained", "dense"}
    assert plan.whole_chosen in plan.whole and "eager" in plan.whole and "channels_last" in plan.whole
    assert plan.ratio > 0 and "| 2 |" in plan.markdown()
    with torch.no_grad():
        expected = model(x)
        assert (optimized(x) - expected).abs().max() <= 1e-4 * expected.abs().max()


def test_forms_that_cannot_be_built_are_reported_not_dropped(monkeypatch):
    # the package exports a function named optimize, so reach the module through sys.modules
    optimize_module = sys.modules["convzoo.deploy.optimize"]

    def refuse(*args, **kwargs):
        raise RuntimeError("cannot script this model")

    monkeypatch.setattr(optimize_module, "FrozenGraph", refuse)
    model = nn.Sequential(create_op("conv", 3, 4), nn.ReLU()).eval()
    _, plan = optimize_with_report(model, torch.randn(1, 3, 8, 8), repeats=2, onednn_fusion=True)
    assert set(plan.whole) == {"as trained", "eager", "channels_last"}
    assert plan.rejected["frozen graph + oneDNN fusion"] == "could not be built: RuntimeError: cannot script this model"
    assert "| not used | why |" in plan.markdown()


@pytest.mark.slow
def test_compiled_form_is_measured_and_equivalent():
    torch.manual_seed(0)
    model = create_model("convnext_tiny", **MODELS.get("convnext_tiny").info.test_cfg).eval()
    x = torch.randn(2, 3, 32, 32)
    optimized, plan = optimize_with_report(model, x, repeats=3, compile=True)
    form = "torch.compile (inductor, freezing)"
    assert form in plan.whole, plan.rejected
    compiled = CompiledGraph(model, x)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(optimized(x), model(x), rtol=1e-4, atol=1e-4)
    # under the flop counter the eager model runs (a compiled frame would fall back to eager for good)
    with FlopCounterMode(display=False) as counter:
        compiled(x)
    assert counter.get_total_flops() > 0


@pytest.mark.parametrize("shape", [(5, 12), (2, 3, 12), (2, 4, 5, 12)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_as_conv_equals_the_linear(shape, bias):
    torch.manual_seed(0)
    linear = nn.Linear(12, 7, bias=bias)
    x = torch.randn(*shape)
    torch.testing.assert_close(LinearAsConv(linear)(x), linear(x), rtol=1e-5, atol=1e-5)
    strided = torch.randn(*shape[:-1], 24)[..., ::2]  # a non-contiguous input
    torch.testing.assert_close(LinearAsConv(linear)(strided), linear(strided), rtol=1e-5, atol=1e-5)


def test_optimize_times_the_conv_form_of_each_linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 36, 10)).eval()
    x = torch.randn(4, 3, 6, 6)
    optimized, plan = optimize_with_report(model, x, repeats=3, whole_forms=False)
    assert set(plan.layers["2"]) == {"as trained", "1×1 conv (oneDNN)"}
    with torch.no_grad():
        torch.testing.assert_close(optimized(x), model(x), rtol=1e-4, atol=1e-5)


def test_the_model_as_given_is_a_timed_form_and_the_layout_is_stated():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 7, padding=3, groups=8)).eval()
    x = torch.randn(2, 3, 12, 12)
    optimized, plan = optimize_with_report(model, x, repeats=3)
    assert plan.original_ms == plan.whole["as trained"]
    assert plan.whole[plan.whole_chosen] == min(plan.whole.values()) and plan.ratio >= 1.0
    assert plan.layout == ("channels_last" if plan.whole_chosen.startswith("channels_last") else "contiguous")
    # the channels-last whole form is a row, "(chosen)" or not: which one wins depends on the timings
    assert f"{plan.layout} memory" in plan.markdown() and "\n| channels_last" in plan.markdown()
    with torch.no_grad():
        torch.testing.assert_close(optimized(x), model(x), rtol=1e-4, atol=1e-5)


def test_channels_last_layers_are_timed_on_channels_last_inputs():
    formats = []
    conv = nn.Conv2d(4, 4, 15, padding=7, groups=4)
    conv.register_forward_pre_hook(
        lambda m, args: formats.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    optimize_with_report(nn.Sequential(conv).eval(), torch.randn(1, 4, 20, 20), repeats=2)
    assert True in formats and False in formats  # the layer ran in both layouts


def test_a_form_that_builds_but_fails_on_the_input_is_reported_not_raised(monkeypatch):
    optimize_module = sys.modules["convzoo.deploy.optimize"]

    class BuildsThenFails(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, x):
            raise RuntimeError("input size is not divisible by the output size is not supported yet")

    monkeypatch.setattr(optimize_module, "FrozenGraph", BuildsThenFails)
    model = nn.Sequential(create_op("conv", 3, 4), nn.ReLU()).eval()
    _, plan = optimize_with_report(model, torch.randn(1, 3, 8, 8), repeats=2)
    assert plan.rejected["eager + frozen graph"] == (
        "failed to run: RuntimeError: input size is not divisible by the output size is not supported yet"
    )
    assert "eager + frozen graph" not in plan.whole and plan.whole_chosen in plan.whole
