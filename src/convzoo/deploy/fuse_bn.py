"""BatchNorm folding: every eval-mode BatchNorm that reads a conv's or linear layer's output alone becomes part of it.

Which BatchNorm follows which layer is found by running the model once on an example input and watching the
tensors, not by reading module order, so any forward (residuals, Python control flow) is handled: a pair is fused
only when the BN's input is the producer's output itself and nothing else reads that output.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from convzoo.ops.base import Op
from convzoo.registry import OPS, TRANSFORMS

__all__ = ["ConvBNPair", "bn_scale_shift", "example_for", "find_conv_bn_pairs", "fuse_bn", "set_submodule"]

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class ConvBNPair:
    """A producer (``nn.ConvNd``, ``nn.Linear`` or a linear convzoo op) whose output only its BatchNorm reads."""

    producer: str
    bn: str


def bn_scale_shift(bn: nn.Module) -> tuple[Tensor, Tensor]:
    """An eval-mode BN as ``y = scale · x + shift``: ``scale = γ/√(var + eps)``, ``shift = β − mean · scale``, (C,)."""
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight
    shift = -bn.running_mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias
    return scale, shift


def _is_producer(module: nn.Module) -> bool:
    if isinstance(module, _CONVS):
        return module.padding_mode == "zeros"
    if isinstance(module, nn.Linear):
        return True
    return isinstance(module, Op) and OPS.get(type(module).registry_name).linear


def example_for(model: nn.Module, size: int = 32) -> Tensor:
    """A guessed input: ``(2, C_in, size, ...)`` from the first conv or op, ``(2, in_features)`` for a linear."""
    for module in model.modules():
        if isinstance(module, _CONVS):
            return torch.randn(2, module.in_channels, *([size] * (module.weight.dim() - 2)))
        if isinstance(module, Op):
            return torch.randn(2, module.in_channels, *([size] * module.dim))
        if isinstance(module, nn.Linear):
            return torch.randn(2, module.in_features)
    raise ValueError("fuse_bn: cannot guess an example input (no conv or linear layer); pass example=")


class _UseCounter(TorchFunctionMode):
    """Counts, per tensor, the calls that read it and return a tensor (``x.shape``, ``x.dim()`` are not reads)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: dict[int, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if any(isinstance(r, Tensor) for r in tree_flatten(result)[0]):
            for value in tree_flatten((args, kwargs or {}))[0]:
                if isinstance(value, Tensor):
                    self.reads[id(value)] = self.reads.get(id(value), 0) + 1
        return result


@torch.no_grad()
def find_conv_bn_pairs(model: nn.Module, example: Tensor | tuple[Tensor, ...]) -> list[ConvBNPair]:
    """The (producer, BN) pairs of ``model`` that can be fused, found by one forward pass on ``example``.

    A pair qualifies when both modules run exactly once, the BN tracks running statistics, its input is the
    producer's output tensor itself, and no other call reads that tensor.
    """
    names = {module: name for name, module in model.named_modules(remove_duplicate=False)}
    calls: dict[str, int] = {}
    outputs: dict[int, str] = {}  # id(output tensor) -> producer name
    kept: list[Tensor] = []  # keeps traced tensors alive so their ids stay unique
    bn_inputs: dict[str, int] = {}

    def hook(module: nn.Module, inputs: tuple, output: object) -> None:
        name = names[module]
        calls[name] = calls.get(name, 0) + 1
        # a linear layer's features are on the last axis, a BN's on axis 1: they coincide for (N, C) only
        if (
            _is_producer(module)
            and isinstance(output, Tensor)
            and not (isinstance(module, nn.Linear) and output.dim() != 2)
        ):
            outputs[id(output)] = name
            counter.reads[id(output)] = 0  # a freed temporary may have had this id before
            kept.append(output)
        if isinstance(module, _BATCH_NORMS) and inputs and isinstance(inputs[0], Tensor):
            bn_inputs[name] = id(inputs[0])
            kept.append(inputs[0])

    counter = _UseCounter()
    handles = [m.register_forward_hook(hook) for m in names if _is_producer(m) or isinstance(m, _BATCH_NORMS)]
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with counter:
            model(*(example if isinstance(example, tuple) else (example,)))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    pairs = []
    for bn_name, tensor_id in bn_inputs.items():
        producer = outputs.get(tensor_id)
        if producer is None or calls.get(producer) != 1 or calls.get(bn_name) != 1 or counter.reads[tensor_id] != 1:
            continue
        bn = model.get_submodule(bn_name)
        if bn.running_mean is None or _out_channels(model.get_submodule(producer)) != bn.num_features:
            continue
        pairs.append(ConvBNPair(producer, bn_name))
    return pairs


def _out_channels(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule at dotted ``name`` by ``module``."""
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


@torch.no_grad()
def fold(producer: nn.Module, bn: nn.Module) -> nn.Module:
    """The single layer equal to ``bn(producer(x))`` in eval mode (a linear op is first made its dense conv)."""
    if isinstance(producer, Op):
        producer = producer.dense_kernel().to_module()
    scale, shift = bn_scale_shift(bn)
    fused = copy.deepcopy(producer)
    weight = producer.weight * scale.view(-1, *([1] * (producer.weight.dim() - 1)))
    bias = shift if producer.bias is None else producer.bias * scale + shift
    fused.weight = nn.Parameter(weight)
    fused.bias = nn.Parameter(bias)
    return fused


@TRANSFORMS.register(
    "fuse_bn",
    kind="transform",
    papers=("quant-whitepaper",),
    summary="fold every eval-mode BatchNorm into the conv, linear layer or linear op whose output it reads",
)
def fuse_bn(
    model: nn.Module, example: Tensor | tuple[Tensor, ...] | None = None, *, inplace: bool = False
) -> nn.Module:
    """Fold each eval-mode BatchNorm into the layer before it; returns the model in eval mode.

    ``bn(conv(x)) = conv'(x)`` with ``w' = w · γ/σ`` and ``b' = (b − μ) · γ/σ + β`` (σ = √(var + eps)); a BN after
    ``nn.Linear`` folds row-wise, one after a linear convzoo op folds into its ``dense_kernel()`` conv. The BN
    becomes ``nn.Identity``. ``example`` is one input the model accepts (default: :func:`example_for`). Equal to
    the eval-mode model up to float rounding (≈1e-6 relative in float32).
    """
    model = model if inplace else copy.deepcopy(model)
    model.eval()
    if example is None:
        example = example_for(model)
    for pair in find_conv_bn_pairs(model, example):
        producer, bn = model.get_submodule(pair.producer), model.get_submodule(pair.bn)
        try:
            set_submodule(model, pair.producer, fold(producer, bn))
        except (NotImplementedError, ValueError):  # an op configuration without a dense kernel keeps its BN
            continue
        set_submodule(model, pair.bn, nn.Identity())
    return model
