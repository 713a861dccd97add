"""int8 quantisation (S19, "Quantizing deep convolutional networks for efficient inference: A whitepaper").

The whitepaper's recommended scheme for CPU inference: weights quantised per output channel (symmetric int8),
activations per tensor (asymmetric uint8) with ranges calibrated on a few batches; BN folded into the conv before
quantisation; quantisation-aware training (QAT) fine-tunes with fake quantisation in the forward pass and
straight-through gradients, then converts the same way.

Two PyTorch stacks carry that one scheme (``backend=``); both calibrate on the same loader and fold BN.

- ``"fx"`` (default): FX graph mode, ``torch.ao.quantization`` with the ``x86`` qconfig (deprecated in torch 2.13
  but present). The converted model runs real int8 kernels (fbgemm/oneDNN ``quantized::conv2d``) in plain eager
  mode. A module class FX cannot trace symbolically is called whole, in float.
- ``"pt2e"``: PyTorch 2 export quantisation from the ``torchao`` package (``prepare_pt2e`` / ``convert_pt2e``
  with ``X86InductorQuantizer``, its default config: per-channel symmetric int8 weights, per-tensor uint8
  activations, histogram calibration). The converted graph is a reference form (float ops between quantize and
  dequantize); it becomes int8 kernels only when lowered: ``compile=True`` (default) runs it through
  ``torch.compile`` (inductor with freezing, which matches the q/dq patterns into oneDNN int8 conv/linear kernels
  and generates fused C++ for the float ops between them; needs a C++ compiler, and compiles once per input shape,
  seconds for a small net, cached on disk by inductor), ``compile=False`` applies the same freezing pattern passes
  without code generation (``lower_pt2e_quantized_to_x86``): a graph of oneDNN int8 kernels run eagerly, for the
  example's shape only. It is saved as a ``torch.export`` program (:meth:`PT2EInt8.save`), not TorchScript.

Why FX stays the default: its int8 model needs no compiler, no per-shape compilation and no extra package,
accepts any batch size, and traces to TorchScript, which ``convzoo deploy`` writes as ``int8.pt`` and
``torch.jit.load`` reads anywhere. Why PT2E is offered: it is the stack PyTorch develops (FX is deprecated, and
if it is removed, PT2E is the whole port), ``torch.export`` sees through the Python control flow that makes FX
keep whole modules in float (compare the two :class:`QuantizeReport` tables of a ConvNeXt), and inductor fuses
the float ops between the int8 kernels, which eager FX runs one by one. Which is faster depends on the model,
batch and machine; ``convzoo bench deploy`` times both side by side against onnxruntime int8.

Which modules stay float, and why, is reported by :func:`quantize_with_report` (:class:`QuantizeReport`).
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from convzoo.deploy.reparam import reparameterize
from convzoo.ops.base import Op
from convzoo.registry import TRANSFORMS

__all__ = ["BACKENDS", "PT2EInt8", "QuantizeReport", "model_size_bytes", "quantize", "quantize_with_report"]

BACKEND = "x86"
BACKENDS = ("fx", "pt2e")
# modules that only move or relabel data: running them on float tensors costs nothing worth reporting
_LAYOUT_MODULES = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)
# fmt: off
_LAYOUT_OPS = frozenset({
    "view", "reshape", "_unsafe_view", "flatten", "permute", "movedim", "transpose", "t", "contiguous", "clone",
    "unsqueeze", "squeeze", "expand", "alias", "detach", "dropout", "slice", "select", "split", "split_with_sizes",
    "chunk", "unbind", "unflatten", "sym_size", "_assert_tensor_metadata", "_assert_scalar",
})  # aten ops that only move or relabel data
# fmt: on


@dataclass
class QuantizeReport:
    """What :func:`quantize` did: the stack, how the int8 model executes, and each module class kept in float.

    ``float_kept`` maps a class name to why it runs in float; ``float_modules`` to the module paths concerned
    (``""``: the top-level module's own code).
    """

    backend: str
    mode: str
    executed: str
    float_kept: dict[str, str] = field(default_factory=dict)
    float_modules: dict[str, list[str]] = field(default_factory=dict)

    def markdown(self) -> str:
        lines = [f"int8 {self.mode} ({self.backend}): {self.executed}"]
        if self.float_kept:
            lines += ["", "| kept in float | modules | why |", "|---|---|---|"]
            for cls, why in self.float_kept.items():
                names = self.float_modules.get(cls, [])
                more = f", … ({len(names)})" if len(names) > 4 else ""
                shown = ", ".join(n or "(top level)" for n in names[:4]) + more
                lines.append(f"| {cls} | {shown} | {why} |")
        return "\n".join(lines) + "\n"

    def _keep(self, cls: str, name: str, why: str) -> None:
        self.float_kept.setdefault(cls, why)
        self.float_modules.setdefault(cls, []).append(name)


def _batches(loader: Iterable, limit: int) -> Iterable[Tensor]:
    for index, batch in enumerate(loader):
        if index >= limit:
            return
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


def _fine_tune(model: nn.Module, calib_loader: Iterable, epochs: int, lr: float) -> None:
    """QAT: SGD on cross-entropy over the loader's ``(input, label)`` pairs, fake quantisation in the forward."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    for _ in range(epochs):
        for batch in calib_loader:
            if not isinstance(batch, (tuple, list)):
                raise ValueError("quantize: qat needs (input, label) batches from calib_loader")
            loss = nn.functional.cross_entropy(model(batch[0]), batch[1])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


# ---------------------------------------------------------------------------------------------------- FX backend


def _untraceable_classes(model: nn.Module) -> list[type]:
    """Module classes FX cannot trace symbolically (shape-dependent control flow, such as ``x.dim()`` checks):
    they run as opaque float leaves. Children are tried before parents, each class once."""
    from torch.fx import Tracer

    leaves: set[type] = {type(m) for m in model.modules() if isinstance(m, Op)}
    tried: set[type] = set(leaves)

    class _LeafTracer(Tracer):
        def is_leaf_module(self, module: nn.Module, name: str) -> bool:
            return type(module) in leaves or super().is_leaf_module(module, name)

    modules = list(model.modules())
    for module in reversed(modules):  # post-order enough: children come after their parent in modules()
        cls = type(module)
        if cls in tried or module is model or isinstance(module, (nn.ModuleList, nn.ModuleDict)):
            continue
        if Tracer().is_leaf_module(module, ""):  # torch.nn layers: FX keeps them whole already
            continue
        tried.add(cls)
        try:
            _LeafTracer().trace(module)
        except Exception:  # noqa: BLE001  (any tracing failure means: keep it whole)
            leaves.add(cls)
    return sorted(leaves, key=lambda c: c.__qualname__)


def _fx_quantize(
    model: nn.Module, calib_loader: Iterable, example: Tensor, qat: bool, steps: tuple[int, int, float]
) -> tuple[nn.Module, QuantizeReport]:
    """Observers (PTQ) or fake quantisers (QAT) for the x86 qconfig, calibration or fine-tuning, conversion."""
    from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx

    torch.backends.quantized.engine = BACKEND
    mapping = (get_default_qat_qconfig_mapping if qat else get_default_qconfig_mapping)(BACKEND)
    untraceable = _untraceable_classes(model)
    custom = {"non_traceable_module_class": untraceable}
    calib_batches, epochs, lr = steps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the FX path's deprecation notice
        if qat:
            prepared = prepare_qat_fx(model.train(), mapping, (example,), prepare_custom_config=custom)
            _fine_tune(prepared, calib_loader, epochs, lr)
        else:
            prepared = prepare_fx(model.eval(), mapping, (example,), prepare_custom_config=custom)
            with torch.no_grad():
                for images in _batches(calib_loader, calib_batches):
                    prepared(images)
        converted = convert_fx(prepared.eval())
    report = QuantizeReport("fx", "qat" if qat else "ptq", "eager, fbgemm/oneDNN quantized:: kernels (x86 engine)")
    _fx_float_kept(converted, set(untraceable), example, report)
    return converted, report


def _fx_supported_classes() -> set[type]:
    """Module classes in any pattern of the backend config ``prepare_fx`` uses by default (the native one)."""
    from torch.ao.quantization.backend_config import get_native_backend_config

    found: set[type] = set()

    def walk(pattern) -> None:
        if isinstance(pattern, tuple):
            for part in pattern:
                walk(part)
        elif isinstance(pattern, type):
            found.add(pattern)

    for config in get_native_backend_config().configs:
        walk(config.pattern)
    return found


def _fx_float_kept(converted: nn.Module, untraceable: set[type], example: Tensor, report: QuantizeReport) -> None:
    """The modules the converted graph calls on float tensors, found by running it once on ``example``."""
    float_input: dict[str, bool] = {}
    handles = []
    for node in converted.graph.nodes:
        module = converted.get_submodule(node.target) if node.op == "call_module" else None
        if module is None or ".quantized" in type(module).__module__ or isinstance(module, _LAYOUT_MODULES):
            continue

        def record(_, args, name=node.target) -> None:
            tensors = [a for a in args if isinstance(a, Tensor)]
            float_input.setdefault(name, bool(tensors) and not any(t.is_quantized for t in tensors))

        handles.append(module.register_forward_pre_hook(record))
    try:
        with torch.no_grad():
            converted(example)
    finally:
        for handle in handles:
            handle.remove()
    supported = _fx_supported_classes()
    for name, is_float in float_input.items():
        if not is_float:
            continue
        cls = type(converted.get_submodule(name))
        if cls in untraceable and issubclass(cls, Op):
            why = "convzoo op with no linear deploy form: FX calls it whole, in float"
        elif cls in untraceable:
            why = "FX cannot trace it symbolically (control flow on values or shapes): called whole, in float"
        elif cls in supported:
            why = "the x86 qconfig mapping gives it no int8 config here: runs in float"
        else:
            why = "no int8 pattern for it in the FX backend config: runs in float between dequantize and quantize"
        report._keep(cls.__name__, name, why)


# -------------------------------------------------------------------------------------------------- PT2E backend


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
        from convzoo.io import atomic_write

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = _export_batch_dynamic(self.reference, torch.zeros(self.example_shape))
        return atomic_write(Path(path), lambda tmp: torch.export.save(program, str(tmp)))


def _export_batch_dynamic(model: nn.Module, example: Tensor) -> torch.export.ExportedProgram:
    """``torch.export`` with a dynamic batch axis (calibration batches and later inputs may differ in size)."""
    # torch.export turns a size-1 axis into the constant 1, which a dynamic axis forbids: trace at batch 2
    traced = torch.cat([example, example]) if example.shape[0] == 1 else example
    return torch.export.export(model, (traced,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))


def _pt2e_quantize(
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
            _fine_tune(prepared, calib_loader, epochs, lr)
            pt2e.move_exported_model_to_eval(prepared)
        else:
            prepared = quantize_pt2e.prepare_pt2e(exported, quantizer)
            with torch.no_grad():
                for images in _batches(calib_loader, calib_batches):
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
        if target.namespace != "aten" or target.overloadpacket.__name__ in _LAYOUT_OPS:
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


# ------------------------------------------------------------------------------------------------------ public


@TRANSFORMS.register(
    "quantize",
    kind="transform",
    papers=("quant-whitepaper",),
    summary="int8 PTQ or QAT: per-channel weights, per-tensor activations, x86 (FX eager or PT2E + inductor) (S19)",
)
def quantize(
    model: nn.Module,
    calib_loader: Iterable,
    mode: Literal["ptq", "qat"] = "ptq",
    *,
    backend: Literal["fx", "pt2e"] = "fx",
    compile: bool | None = None,
    calib_batches: int = 16,
    qat_epochs: int = 1,
    qat_lr: float = 1e-4,
) -> nn.Module:
    """An int8 copy of ``model`` for x86 CPUs (input and output stay float32).

    ``calib_loader`` yields input batches or ``(input, label)`` pairs. ``ptq``: observe activation ranges on
    ``calib_batches`` batches, then convert. ``qat``: fine-tune with fake quantisation (SGD, ``qat_lr``,
    cross-entropy on the pairs' labels) for ``qat_epochs`` passes over ``calib_loader``, then convert. Linear
    convzoo ops are first replaced by their deploy form (:func:`reparameterize`); BN is folded by the fusion
    patterns. ``backend``: ``"fx"`` (eager int8 modules, TorchScript-traceable) or ``"pt2e"`` (torchao's
    ``X86InductorQuantizer``; a :class:`PT2EInt8`, compiled by inductor unless ``compile=False``); ``compile=None``
    takes the backend's default. The module docstring explains the choice; :func:`quantize_with_report` also
    says which module classes stay float, and why.
    """
    return quantize_with_report(
        model,
        calib_loader,
        mode,
        backend=backend,
        compile=compile,
        calib_batches=calib_batches,
        qat_epochs=qat_epochs,
        qat_lr=qat_lr,
    )[0]


def quantize_with_report(
    model: nn.Module,
    calib_loader: Iterable,
    mode: Literal["ptq", "qat"] = "ptq",
    *,
    backend: Literal["fx", "pt2e"] = "fx",
    compile: bool | None = None,
    calib_batches: int = 16,
    qat_epochs: int = 1,
    qat_lr: float = 1e-4,
) -> tuple[nn.Module, QuantizeReport]:
    """:func:`quantize`, also returning the :class:`QuantizeReport` (executed form, module classes kept float)."""
    if mode not in ("ptq", "qat"):
        raise ValueError(f"quantize: mode must be 'ptq' or 'qat', got {mode!r}")
    if backend not in BACKENDS:
        raise ValueError(f"quantize: backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if compile is not None and not isinstance(compile, bool):
        raise TypeError(f"quantize: compile must be a bool or None, got {compile!r}")
    if backend == "fx" and compile:
        raise ValueError(
            "quantize: compile=True applies to backend='pt2e' only (FX int8 runs eagerly), got backend='fx'"
        )
    example = next(iter(_batches(calib_loader, 1)), None)
    if example is None:
        raise ValueError("quantize: calib_loader yielded no batch")
    model = reparameterize(copy.deepcopy(model))
    steps = (calib_batches, qat_epochs, qat_lr)
    if backend == "pt2e":
        return _pt2e_quantize(model, calib_loader, example, mode == "qat", steps, compile is not False)
    return _fx_quantize(model, calib_loader, example, mode == "qat", steps)


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s serialised ``state_dict`` (int8 weights count one byte each)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes
