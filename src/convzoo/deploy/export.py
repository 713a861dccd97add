"""ONNX export with a dynamic batch axis and an onnxruntime parity check; TorchScript files for the deploy CLI."""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from convzoo.core.files import atomic_write

__all__ = ["OnnxExport", "export_onnx", "onnx_session", "save_torchscript"]


@dataclass(frozen=True)
class OnnxExport:
    """Where the model went and how closely onnxruntime reproduces it (at the example's batch and at another)."""

    path: Path
    max_abs_diff: float
    batches_checked: tuple[int, ...]
    opset: int


def onnx_session(path: str | Path, threads: int | None = None):
    """An onnxruntime CPU session for ``path`` with all graph optimisations (``threads`` intra-op threads)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # idle threads sleep instead of spinning, so they do not steal the cores from whatever runs next (fair timing)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def export_onnx(model: nn.Module, path: str | Path, example: Tensor, *, opset: int = 18) -> OnnxExport:
    """Write ``model`` (eval mode, float) to ONNX at ``path`` with a dynamic batch axis, then run it in
    onnxruntime at the example's batch and at batch ``N + 1`` and report the largest absolute difference from
    PyTorch. Needs the ``onnx``, ``onnxscript`` and ``onnxruntime`` packages.
    """
    model = copy.deepcopy(model).eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    # torch.export specialises a size-1 axis to the constant 1, which a dynamic axis forbids: trace at batch 2
    traced_example = torch.cat([example, example]) if example.shape[0] == 1 else example

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model, (traced_example,), dynamo=True, dynamic_shapes=({0: batch},), opset_version=opset, verbose=False
            )
        program.save(str(tmp))

    path = atomic_write(Path(path), write)
    session = onnx_session(path)
    input_name = session.get_inputs()[0].name
    worst = 0.0
    batches = (example.shape[0], example.shape[0] + 1)
    for size in batches:
        x = torch.cat([example, example])[:size] if size > example.shape[0] else example
        with torch.no_grad():
            expected = model(x)
        (got,) = session.run(None, {input_name: x.numpy()})
        worst = max(worst, (torch.from_numpy(got) - expected).abs().max().item())
    return OnnxExport(path, worst, batches, opset)


def save_torchscript(model: nn.Module, path: str | Path, example: Tensor) -> Path:
    """A traced TorchScript file of ``model`` (int8 FX models and :func:`optimize`'s frozen graphs included),
    loadable without convzoo by ``torch.jit.load`` (a graph saved from the oneDNN-fusion form runs unfused unless
    the loader calls ``torch.jit.enable_onednn_fusion(True)``)."""
    from convzoo.deploy.optimize import FrozenGraph

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice (torch 2.13); it still works
        if isinstance(model, FrozenGraph):
            traced = model.graph
        else:
            traced = torch.jit.trace(model.eval(), example, check_trace=False)
        return atomic_write(Path(path), lambda tmp: torch.jit.save(traced, str(tmp)))
