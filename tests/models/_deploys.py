"""Checks model tests share: a few steps lower the loss, it profiles, ``optimize`` keeps its outputs, and its ONNX
export runs in onnxruntime."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from convzoo.deploy import export_onnx, optimize
from convzoo.profile import profile
from convzoo.profile.machine import MachinePeaks

PEAKS = MachinePeaks("test cpu", 1, torch.__version__, fp32_gflops=50.0, bf16_gflops=None, copy_gbps=5.0)


def check_profile_and_optimize(model: nn.Module, x: Tensor) -> None:
    """``profile`` counts work and ``optimize`` returns a form with the model's outputs."""
    report = profile(model, x, repeats=2, warmup=1, layout=False, threads=1, peaks=PEAKS)
    assert report.macs > 0
    fast = optimize(model, x, repeats=2)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-5)


def check_onnx_export(model: nn.Module, x: Tensor, path) -> None:
    """The ONNX export equals the model in onnxruntime at two batch sizes (skipped without onnxruntime)."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = export_onnx(model, path, x)
    assert result.batches_checked == (2, 3) and result.max_abs_diff < 1e-4


def check_steps_lower_the_loss(model: nn.Module, steps: int, x: Tensor, labels: Tensor) -> None:
    """``steps`` Adam steps (lr 1e-3) on one fixed batch end with a lower cross-entropy than they started with."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        loss = nn.functional.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0], losses
