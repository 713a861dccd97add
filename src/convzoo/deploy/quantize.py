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
import warnings
from collections.abc import Iterable
from typing import Literal

import torch
from torch import Tensor, nn

from convzoo.deploy.quantize_common import LAYOUT_MODULES, QuantizeReport, batches, fine_tune
from convzoo.deploy.quantize_pt2e import pt2e_quantize
from convzoo.deploy.reparam import reparameterize
from convzoo.ops.base import Op
from convzoo.registry import TRANSFORMS

__all__ = ["BACKENDS", "QuantizeReport", "model_size_bytes", "quantize", "quantize_with_report"]

BACKEND = "x86"
BACKENDS = ("fx", "pt2e")


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
            fine_tune(prepared, calib_loader, epochs, lr)
        else:
            prepared = prepare_fx(model.eval(), mapping, (example,), prepare_custom_config=custom)
            with torch.no_grad():
                for images in batches(calib_loader, calib_batches):
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
        if module is None or ".quantized" in type(module).__module__ or isinstance(module, LAYOUT_MODULES):
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
    example = next(iter(batches(calib_loader, 1)), None)
    if example is None:
        raise ValueError("quantize: calib_loader yielded no batch")
    model = reparameterize(copy.deepcopy(model))
    steps = (calib_batches, qat_epochs, qat_lr)
    if backend == "pt2e":
        return pt2e_quantize(model, calib_loader, example, mode == "qat", steps, compile is not False)
    return _fx_quantize(model, calib_loader, example, mode == "qat", steps)


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s serialised ``state_dict`` (int8 weights count one byte each)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes
