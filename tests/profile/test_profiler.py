"""profile(): rows and totals agree with counting, the roofline arithmetic, waterline ≤ measured, the faster memory
layout per row (the `convzoo profile` command: tests/commands/test_profile.py)."""

from __future__ import annotations

import json
import time

import pytest
import torch
from torch import nn

from convzoo import create_op
from convzoo.profile import MachinePeaks, count_layers, machine_peaks, profile
from convzoo.profile.machine import peaks_path
from convzoo.profile.profiler import LAYOUT_FLAG

PEAKS = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=None, copy_gbps=5.0)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A cache in tmp_path holding fixture peaks, so the CLI never runs the full multi-second measurement."""
    monkeypatch.setenv("CONVZOO_CACHE_DIR", str(tmp_path / "cache"))
    for threads in (1, 2, torch.get_num_threads()):
        path = peaks_path(threads)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**PEAKS.to_dict(), "threads": threads}))


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), _Residual(), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def test_rows_and_totals_agree_with_counting_and_the_roofs():
    model = small_model()
    x = torch.randn(2, 3, 12, 12)
    result = profile(model, x, repeats=5, warmup=1, peaks=PEAKS)
    counts = count_layers(model, (x,))
    assert [(r.name or "(root)", r.own_ops) for r in counts.layers] == [(r.name, r.own_ops) for r in result.layers]
    assert (result.params, result.macs, result.bytes) == (counts.params, counts.macs, counts.bytes)
    assert result.flops == 2 * result.macs and result.threads == torch.get_num_threads()
    for row in result.layers:
        assert row.median_ms > 0 and row.iqr_ms >= 0
        assert row.roofline_ms == pytest.approx(max(row.flops / 50e9, row.bytes / 5e9) * 1e3)
        assert row.efficiency == pytest.approx(row.roofline_ms / row.median_ms)
        assert row.gflops == pytest.approx(row.flops / (row.median_ms * 1e6))
    assert result.waterline_ms == pytest.approx(sum(r.roofline_ms for r in result.layers))
    assert result.efficiency == pytest.approx(result.waterline_ms / result.latency_ms)
    assert result.latency.repeats == 5 and result.input_shapes == ((2, 3, 12, 12),)
    own = next(r for r in result.layers if r.own_ops)
    assert own.name == "1" and own.bytes > 0  # the residual add and relu of _Residual.forward


def test_waterline_is_below_the_measured_latency_under_measured_peaks():
    peaks = machine_peaks(quick=True)  # tiny measurement of this machine, cached in tmp_path
    result = profile(small_model(), (1, 3, 16, 16), repeats=10, warmup=2, peaks=peaks)
    assert 0 < result.waterline_ms <= result.latency_ms
    assert 0 < result.efficiency <= 1


def test_profile_of_one_op_uses_its_registered_name_and_a_shape():
    op = create_op("conv", 8, 8)
    result = profile(op, (1, 8, 10, 10), repeats=3, warmup=1, peaks=PEAKS)
    assert result.model == "conv" and [r.name for r in result.layers] == ["(root)"]
    assert result.macs == 8 * 8 * 9 * 100


def test_profile_restores_mode_and_threads():
    model = small_model().train()
    before = torch.get_num_threads()
    profile(model, (1, 3, 8, 8), threads=2, repeats=2, warmup=1, peaks=PEAKS)
    assert model.training and torch.get_num_threads() == before
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((small_model(), (1, 4, 8, 8)), {}, ValueError, r"profile: Sequential cannot run on input 1x4x8x8: "),
        ((small_model(), (1, 0, 8)), {}, ValueError, r"profile: expected a tensor, .* got \(1, 0, 8\)"),
        ((small_model(),), {}, ValueError, r"profile: give exactly one of example_input"),
        (("resnet",), {"input_shape": (1, 3, 8, 8)}, TypeError, r"profile: model must be an nn.Module, got str"),
    ],
)
def test_bad_arguments(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        profile(*args, peaks=PEAKS, repeats=1, warmup=0, **kwargs)


class _SlowInNCHW(nn.Module):
    """Sleeps when its input is not channels-last: a layer whose layout costs it, without relying on timings."""

    def forward(self, x):
        if not x.is_contiguous(memory_format=torch.channels_last):
            time.sleep(0.002)
        return x + 1


def test_layout_rows_name_the_faster_layout_and_flag_costly_ones():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), _SlowInNCHW())
    result = profile(model, torch.randn(1, 3, 8, 8), repeats=5, warmup=1, peaks=PEAKS)
    slow = next(layer for layer in result.layers if layer.type == "_SlowInNCHW")
    assert slow.layout == "NCHW" and slow.other_layout == "channels_last" and slow.faster_layout == "channels_last"
    assert slow.layout_speedup >= LAYOUT_FLAG and slow.layout_flag
    assert all(layer.other_layout_ms is not None for layer in result.layers)
    assert result.layout == "NCHW" and result.other_layout_latency is not None and result.layout_speedup > 1
    assert "CL " in result.table() and " !" in result.table() and "1 rows: 1" in result.table()
    data = result.to_dict()
    assert data["totals"]["layout"] == "NCHW" and data["layers"][1]["layout_flag"] is True
    assert data["fingerprint"]["threads"] == result.threads and data["load"]["wall_s"] > 0


def test_layouts_are_compared_only_for_4d_inputs_and_when_asked():
    skipped = profile(nn.Conv2d(3, 4, 3), torch.randn(1, 3, 8, 8), repeats=2, warmup=0, peaks=PEAKS, layout=False)
    assert skipped.layout is None and skipped.layers[0].layout_speedup is None and "faster layout" in skipped.table()
    one_d = profile(nn.Conv1d(3, 4, 3), torch.randn(1, 3, 8), repeats=2, warmup=0, peaks=PEAKS)
    assert one_d.layout is None and "layouts not compared: the input is 3-d" in one_d.table()
