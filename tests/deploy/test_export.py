"""export_onnx: a dynamic batch axis and an onnxruntime parity check; TorchScript files load and agree."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from convzoo.deploy import export_onnx, quantize, save_torchscript
from convzoo.ops.base import create_op
from convzoo.testing import randomize_batchnorm_


def _net() -> nn.Module:
    torch.manual_seed(0)
    return randomize_batchnorm_(
        nn.Sequential(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), create_op("asym", 8, 4, 3))
    ).eval()


@pytest.mark.peer
def test_onnx_matches_pytorch_at_two_batch_sizes(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from convzoo.deploy import onnx_session

    model, x = _net(), torch.randn(2, 2, 9, 9)
    result = export_onnx(model, tmp_path / "net.onnx", x)
    assert result.path.is_file() and result.batches_checked == (2, 3)
    assert result.max_abs_diff < 1e-4
    session = onnx_session(result.path, threads=1)
    five = torch.randn(5, 2, 9, 9)  # a batch the export never saw
    (got,) = session.run(None, {session.get_inputs()[0].name: five.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), model(five), rtol=1e-4, atol=1e-4)


def test_torchscript_file_of_an_int8_model_loads_and_agrees(tmp_path):
    model, x = _net(), torch.randn(2, 2, 9, 9)
    quantized = quantize(model, [x])
    path = save_torchscript(quantized, tmp_path / "model.pt", x)
    loaded = _load(str(path))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), quantized(x))


def _load(path: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated in torch 2.13 but works
        return torch.jit.load(path)


@pytest.mark.peer
def test_a_batch_of_one_still_exports_a_dynamic_batch(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    result = export_onnx(_net(), tmp_path / "net.onnx", torch.randn(1, 2, 9, 9))
    assert result.batches_checked == (1, 2) and result.max_abs_diff < 1e-4
