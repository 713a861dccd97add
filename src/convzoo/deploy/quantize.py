"""int8 quantisation (S19, "Quantizing deep convolutional networks for efficient inference: A whitepaper").

The whitepaper's recommended scheme for CPU inference: weights quantised per output channel (symmetric int8),
activations per tensor (asymmetric uint8) with ranges calibrated on a few batches; BN folded into the conv before
quantisation; quantisation-aware training (QAT) fine-tunes with fake quantisation in the forward pass and
straight-through gradients, then converts the same way.

Which PyTorch stack (one choice, behind :func:`_prepare` / :func:`_convert`): torch 2.13 offers the FX graph mode
path in ``torch.ao.quantization`` (deprecated but present) and the PT2E path with ``X86InductorQuantizer``, which
now lives in the separate ``torchao`` package. We use FX with the ``x86`` backend because its converted model runs
real int8 kernels (fbgemm/oneDNN ``quantized::conv2d``) in plain eager mode: no ``torch.compile``, so no C++
toolchain at deploy time, no minutes of compilation per shape, and no extra dependency. PT2E only produces int8
kernels after inductor compilation; without it the exported graph runs fp32 reference (quantize → dequantize)
ops. If FX is removed from torch, replacing these two functions is the whole port.
"""

from __future__ import annotations

import copy
import io
import warnings
from collections.abc import Iterable
from typing import Literal

import torch
from torch import Tensor, nn

from convzoo.deploy.reparam import reparameterize
from convzoo.ops.base import Op
from convzoo.registry import TRANSFORMS

__all__ = ["model_size_bytes", "quantize"]

BACKEND = "x86"


def _batches(loader: Iterable, limit: int) -> Iterable[Tensor]:
    for index, batch in enumerate(loader):
        if index >= limit:
            return
        yield batch[0] if isinstance(batch, (tuple, list)) else batch


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


def _prepare(model: nn.Module, example: Tensor, qat: bool) -> nn.Module:
    """Insert observers (PTQ) or fake quantisers (QAT): per-channel symmetric int8 weights, per-tensor uint8
    activations, for the x86 backend. Ops without a deploy form stay float (called as opaque leaves)."""
    from torch.ao.quantization import get_default_qat_qconfig_mapping, get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import prepare_fx, prepare_qat_fx

    torch.backends.quantized.engine = BACKEND
    mapping = (get_default_qat_qconfig_mapping if qat else get_default_qconfig_mapping)(BACKEND)
    custom = {"non_traceable_module_class": _untraceable_classes(model)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the FX path's deprecation notice
        if qat:
            return prepare_qat_fx(model.train(), mapping, (example,), prepare_custom_config=custom)
        return prepare_fx(model.eval(), mapping, (example,), prepare_custom_config=custom)


def _convert(prepared: nn.Module) -> nn.Module:
    from torch.ao.quantization.quantize_fx import convert_fx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fx(prepared.eval())


@TRANSFORMS.register(
    "quantize",
    kind="transform",
    papers=("quant-whitepaper",),
    summary="int8 PTQ or QAT: per-channel weights, per-tensor activations, x86 backend (S19)",
)
def quantize(
    model: nn.Module,
    calib_loader: Iterable,
    mode: Literal["ptq", "qat"] = "ptq",
    *,
    calib_batches: int = 16,
    qat_epochs: int = 1,
    qat_lr: float = 1e-4,
) -> nn.Module:
    """An int8 copy of ``model`` for x86 CPUs (input and output stay float32).

    ``calib_loader`` yields input batches or ``(input, label)`` pairs. ``ptq``: observe activation ranges on
    ``calib_batches`` batches, then convert. ``qat``: fine-tune with fake quantisation (SGD, ``qat_lr``,
    cross-entropy on the pairs' labels) for ``qat_epochs`` passes over ``calib_loader``, then convert. Linear
    convzoo ops are first replaced by their deploy form (:func:`reparameterize`); BN is folded by the FX
    fusion patterns.
    """
    if mode not in ("ptq", "qat"):
        raise ValueError(f"quantize: mode must be 'ptq' or 'qat', got {mode!r}")
    model = reparameterize(copy.deepcopy(model))
    example = next(iter(_batches(calib_loader, 1)), None)
    if example is None:
        raise ValueError("quantize: calib_loader yielded no batch")
    prepared = _prepare(model, example, qat=mode == "qat")
    if mode == "qat":
        optimizer = torch.optim.SGD(prepared.parameters(), lr=qat_lr, momentum=0.9)
        for _ in range(qat_epochs):
            for batch in calib_loader:
                if not isinstance(batch, (tuple, list)):
                    raise ValueError("quantize: qat needs (input, label) batches from calib_loader")
                loss = nn.functional.cross_entropy(prepared(batch[0]), batch[1])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    else:
        with torch.no_grad():
            for images in _batches(calib_loader, calib_batches):
                prepared(images)
    return _convert(prepared)


def model_size_bytes(model: nn.Module) -> int:
    """Bytes of ``model``'s serialised ``state_dict`` (int8 weights count one byte each)."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes
