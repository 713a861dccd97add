"""The PT2E backend of :func:`convzoo.deploy.quantize.quantize` (``backend="pt2e"``): torchao's PT2E quantisation
with ``X86InductorQuantizer``, and :class:`PT2EInt8`, the module that runs the converted graph.

Why and when this backend is used rather than FX: see :mod:`convzoo.deploy.quantize`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor, nn

from convzoo.deploy.quantize_common import LAYOUT_OPS, QuantizeReport, batches, fine_tune

__all__ = ["PT2EInt8", "pt2e_quantize"]


def _torchao():
    """torchao's PT2E entry points (``pip install torchao``; the ``deploy`` extra)."""
    logger = logging.getLogger("torchao")
    level = logger.level
    # its import reports, as warnings, the CUDA-only kernels a CPU build of torch cannot load
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript decorators inside torchao (torch 2.13)
            from torchao.quantization import pt2e
            from torchao.quantization.pt2e import quantize_pt2e
            from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86
            from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer
    except ImportError as error:
        raise ImportError(
            "quantize: backend='pt2e' needs the torchao package (pip install torchao, or convzoo[deploy])"
        ) from error
    finally:
        logger.setLevel(level)
    return pt2e, quantize_pt2e, x86_inductor_quantizer, lower_pt2e_quantized_to_x86


class PT2EInt8(nn.Module):
    """A PT2E int8 model: ``reference`` is the converted graph (float ops between quantize and dequantize, int8
    weights; what :meth:`save` writes and what ``state_dict`` holds), ``forward`` runs its executed form.

    ``compiled=True``: ``torch.compile`` (inductor, freezing on: the q/dq patterns become oneDNN int8 kernels).
    Inductor's ``freezing`` switch is process-wide, so it is set for each call (a new input shape compiles again,
    with it on) and restored. ``compiled=False``: the same freezing pattern passes without code generation
    (``lower_pt2e_quantized_to_x86``), specialised to the example's shape; its prepacked weights are opaque oneDNN
    tensors, so that graph is held as a plain attribute rather than as a submodule. Under a ``TorchDispatchMode``
    (the flop counter of :mod:`convzoo.profile`, a fake-tensor trace) it runs the reference graph, which computes
    the same function op by op: dynamo cannot compile under such a mode and, once it has failed, runs the compiled
    frame eagerly from then on, and the oneDNN int8 kernels of the lowered form are invisible to the counter.
    """

    def __init__(self, reference: nn.Module, example: Tensor, *, compiled: bool) -> None:
        super().__init__()
        self.reference = reference
        self.compiled = compiled
        self.example_shape = tuple(example.shape)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if compiled:
                self.__dict__["executed"] = torch.compile(reference, dynamic=False)
            else:
                self.__dict__["executed"] = _torchao()[3](reference, (example,))
            self(example)  # compile (or check the lowered graph) now, not on the user's first call

    def forward(self, x: Tensor) -> Tensor:
        from torch.utils._python_dispatch import _get_current_dispatch_mode

        if _get_current_dispatch_mode() is not None:  # see the class docstring
            return self.reference(x)
        if not self.compiled and tuple(x.shape) != self.example_shape:
            raise ValueError(
                f"PT2EInt8: the lowered (compile=False) graph takes inputs of shape {self.example_shape}, "
                f"got {tuple(x.shape)}"
            )
        with torch.no_grad():
            if not self.compiled:
                return self.executed(x)
            with torch._inductor.config.patch(freezing=True):
                return self.executed(x)

    def extra_repr(self) -> str:
        return f"executed={'torch.compile (inductor, freezing)' if self.compiled else 'lowered oneDNN graph'}"

    def save(self, path: str | Path) -> Path:
        """Write the reference graph as a ``torch.export`` program (``torch.export.load(path).module()``, then
        ``torch.compile`` it with inductor's ``freezing`` on to run int8 kernels again), atomically."""
        from convzoo.core.files import atomic_write

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = _export_batch_dynamic(self.reference, torch.zeros(self.example_shape))
        return atomic_write(Path(path), lambda tmp: torch.export.save(program, str(tmp)))


def _export_batch_dynamic(model: nn.Module, example: Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` with a dynamic batch axis (calibration batches and later inputs may differ in size)."""
    # torch.export turns a size-1 axis into the constant 1, which a dynamic axis forbids: trace at batch 2
    traced = torch.cat([example, example]) if example.shape[0] == 1 else example
    return torch.export.export(model, (traced,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))


def pt2e_quantize(
    model: nn.Module, calib_loader: Iterable, example: Tensor, qat: bool, steps: tuple[int, int, float], compile: bool
) -> tuple[nn.Module, QuantizeReport]:
    """``torch.export`` (dynamic batch), ``prepare_pt2e`` / ``prepare_qat_pt2e`` with ``X86InductorQuantizer``,
    calibration or fine-tuning, ``convert_pt2e``, then the executed form (:class:`PT2EInt8`)."""
    pt2e, quantize_pt2e, x86, _ = _torchao()
    calib_batches, epochs, lr = steps
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config(is_qat=qat))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exported = _export_batch_dynamic(model.train(qat), example).module()
        if qat:
            prepared = quantize_pt2e.prepare_qat_pt2e(exported, quantizer)
            fine_tune(prepared, calib_loader, epochs, lr)
            pt2e.move_exported_model_to_eval(prepared)
        else:
            prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
            with torch.no_grad():
                for images in batches(calib_loader, calib_batches):
                    prepared(images)
        converted = quantize_pt2e.convert_pt2e(prepared)
    _drop_unused_tensors(converted)
    pt2e.move_exported_model_to_eval(converted)
    pt2e.allow_exported_model_train_eval(converted)  # so that .eval() on the wrapper is not an error
    executed = "torch.compile (inductor, freezing): oneDNN int8 kernels" if compile else "lowered oneDNN int8 graph"
    report = QuantizeReport("pt2e", "qat" if qat else "ptq", executed)
    _pt2e_float_kept(converted, type(model).__name__, report)
    return PT2EInt8(converted, example, compiled=compile), report


def _drop_unused_tensors(graph_module: nn.Module) -> None:
    """Delete the parameters and buffers no node reads: ``convert_pt2e`` folds each float weight into an int8
    constant but keeps the float original, which would double the model's ``state_dict``."""
    read = {node.target for node in graph_module.graph.nodes if node.op == "get_attr"}
    for name, _ in [*graph_module.named_parameters(), *graph_module.named_buffers()]:
        if name not in read:
            owner, _, attribute = name.rpartition(".")
            delattr(graph_module.get_submodule(owner), attribute)
    graph_module.delete_all_unused_submodules()


def _pt2e_float_kept(converted: nn.Module, root: str, report: QuantizeReport) -> None:
    """Modules (innermost in each node's ``nn_module_stack``) with compute the quantizer left unannotated."""
    x86 = _torchao()[2]
    float_ops: dict[tuple[str, str], list[torch._ops.OpOverload]] = {}
    quantized: set[tuple[str, str]] = set()
    for node in converted.graph.nodes:
        target = node.target
        if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        if target.namespace != "aten" or target.overloadpacket.__name__ in LAYOUT_OPS:
            continue
        stack = node.meta.get("nn_module_stack") or {}
        path, cls = list(stack.values())[-1] if stack else ("", root)
        owner = (path, cls.rsplit(".", 1)[-1] if isinstance(cls, str) else cls.__name__)
        annotation = node.meta.get("quantization_annotation")
        if annotation is not None and annotation._annotated:
            quantized.add(owner)
        elif target not in float_ops.setdefault(owner, []):
            float_ops[owner].append(target)
    for (path, cls), ops in float_ops.items():

        def names(kept: list) -> str:
            return ", ".join(f"aten.{op.overloadpacket.__name__}" for op in kept)

        following = [op for op in ops if op in x86.propagation_quantizable_ops]
        unannotated = [op for op in ops if op in x86.default_quantizable_ops and op not in following]
        unsupported = [op for op in ops if op not in x86.default_quantizable_ops]
        reasons = (
            [f"X86InductorQuantizer has no standalone int8 recipe for {names(unsupported)}"] if unsupported else []
        )
        if following:
            reasons.append(f"{names(following)} runs in int8 only after an int8 op, and its input here is float")
        if unannotated:
            reasons.append(f"X86InductorQuantizer left {names(unannotated)} unannotated in this context")
        partly = "partly float: " if (path, cls) in quantized else ""
        report._keep(cls, path, partly + "; ".join(reasons))
