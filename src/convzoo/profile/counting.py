"""Counting: parameters, MACs (multiply-accumulates) and bytes moved, per layer and for a whole model (S54).

MACs come from ``torch.utils.flop_counter`` (``MACs = FLOPs / 2`` of the contractions it sees: convolutions,
matmuls, attention), with aten formulas added for the contractions it does not see (:data:`ATEN_MAC_FORMULAS`).
Elementwise ops, norms, pooling, padding and data movement (shift, gather, concatenation) cost 0 MACs: their
cost is the bytes they move, which the roofline charges. A module whose cost the counter cannot see (an op built
from elementwise products, or data movement only) states its own formula: a class may define
``macs(input_size) -> int``, the MACs *per sample* for the spatial input size ``input_size`` (``sic`` does), and
any other module type can be given one with :func:`register_macs`. A formula replaces the counter for that
module; the row says which source it used.

Layers are found by forward hooks while the model runs once in eval mode under ``no_grad``:

- a *layer* is a module without children, a convzoo ``Op`` or a module with a MACs formula (its children are
  inside it); one row per layer, summed over its calls;
- a container that runs tensor ops itself (a residual add, a functional activation, a reshape between its
  children) gets an *own ops* row, so that every op of the forward is counted exactly once.

Bytes are the minimum traffic of a layer: its inputs, its weights (parameters and buffers) and its outputs, each
once per call (none for a layer that runs only views, such as ``Identity`` or ``Flatten``). An own-ops row moves
the inputs and outputs of each of its aten ops (views move nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from convzoo.ops.base import Op

__all__ = [
    "ATEN_MAC_FORMULAS",
    "LayerCount",
    "ModelCount",
    "count_layers",
    "count_macs",
    "is_layer",
    "register_macs",
    "tensor_bytes",
    "walk_layers",
]

aten = torch.ops.aten
ModuleFormula = Callable[[nn.Module, tuple[Any, ...], Any], int]
_MODULE_FORMULAS: dict[type, ModuleFormula] = {}


def _mv_flop(matrix_shape, vector_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * matrix_shape[0] * matrix_shape[1]


def _addmv_flop(self_shape, matrix_shape, vector_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * matrix_shape[0] * matrix_shape[1]


def _dot_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    return 2 * a_shape[0]


def _addbmm_flop(self_shape, a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
    batch, n, k = a_shape
    return 2 * batch * n * k * b_shape[2]


# Contractions that torch.utils.flop_counter does not count (FLOPs = 2 · MACs, shapes in, like its own formulas).
ATEN_MAC_FORMULAS: dict[Any, Callable[..., int]] = {
    aten.mv: _mv_flop,
    aten.addmv: _addmv_flop,
    aten.dot: _dot_flop,
    aten.vdot: _dot_flop,
    aten.addbmm: _addbmm_flop,
}


def register_macs(module_type: type[nn.Module], formula: ModuleFormula) -> None:
    """Give ``module_type`` a MACs formula ``formula(module, inputs, output) -> int`` for one whole call.

    It replaces the flop counter for modules of that type (and makes them layers). Use it for a foreign module the
    counter cannot see into; a convzoo op defines ``macs(input_size)`` on its class instead.
    """
    if not (isinstance(module_type, type) and issubclass(module_type, nn.Module)):
        raise TypeError(f"register_macs: module_type must be an nn.Module subclass, got {module_type!r}")
    if not callable(formula):
        raise TypeError(f"register_macs: formula must be callable (module, inputs, output) -> int, got {formula!r}")
    _MODULE_FORMULAS[module_type] = formula


def _formula(module: nn.Module) -> ModuleFormula | None:
    for cls in type(module).__mro__:
        if cls in _MODULE_FORMULAS:
            return _MODULE_FORMULAS[cls]
    if callable(getattr(type(module), "macs", None)):
        return _per_sample_formula
    return None


def _per_sample_formula(module: nn.Module, inputs: tuple[Any, ...], output: Any) -> int:
    """``module.macs(spatial size)`` per sample, times the batch of the first tensor input ``(N, C, *S)``."""
    x = next(t for t in tree_flatten(inputs)[0] if isinstance(t, Tensor))
    return int(module.macs(tuple(x.shape[2:]))) * x.shape[0]


def is_layer(module: nn.Module) -> bool:
    """Whether ``module`` is one row of a profile: no children, a convzoo ``Op``, or a module with a MACs formula."""
    return isinstance(module, Op) or _formula(module) is not None or next(module.children(), None) is None


def walk_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module, bool]]:
    """``(name, module, is_layer)`` for the modules a profile hooks: layers, and the containers above them."""
    stack = [("", model)]
    seen: set[int] = set()
    while stack:
        name, module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        layer = is_layer(module)
        yield name, module, layer
        if not layer:
            children = [(f"{name}.{n}" if name else n, m) for n, m in module.named_children()]
            stack.extend(reversed(children))


def tensor_bytes(*objects: Any) -> int:
    """Bytes of the distinct tensors (by identity) in nested ``objects``: ``numel · element_size`` each."""
    seen: set[int] = set()
    total = 0
    for item in tree_flatten(objects)[0]:
        if isinstance(item, Tensor) and id(item) not in seen:
            seen.add(id(item))
            total += item.numel() * item.element_size()
    return total


def _weights_bytes(module: nn.Module, recurse: bool = True) -> int:
    tensors = {id(t): t for t in (*module.parameters(recurse=recurse), *module.buffers(recurse=recurse))}
    return tensor_bytes(list(tensors.values()))


def _param_count(module: nn.Module, recurse: bool = True) -> int:
    return sum(p.numel() for p in {id(p): p for p in module.parameters(recurse=recurse)}.values())


_NO_TRAFFIC = {"aten::empty", "aten::empty_like", "aten::empty_strided", "aten::lift_fresh"}


def _moves_data(func: Any) -> bool:
    """False for views (outputs alias inputs, nothing is read or written), allocations and higher-order ops."""
    schema = getattr(func, "_schema", None)
    if schema is None or schema.name in _NO_TRAFFIC:
        return False
    return not any(r.alias_info is not None and not r.alias_info.is_write for r in schema.returns)


class _OpBytes(TorchDispatchMode):
    """Running total of the bytes read and written by the aten ops run under it (views and allocations: none)."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if _moves_data(func):
            self.total += tensor_bytes(args, kwargs) + tensor_bytes(out)
        return out


@dataclass(frozen=True)
class LayerCount:
    """Counts of one profile row for one forward pass.

    ``own_ops`` marks the row of a container's own tensor ops; ``macs_source`` is ``"flop_counter"``,
    ``"formula"`` (the module's own MACs formula) or ``"none"`` (no MACs anywhere in it).
    """

    name: str
    type: str
    calls: int
    params: int
    macs: int
    bytes: int
    macs_source: str
    own_ops: bool = False

    @property
    def flops(self) -> int:
        """``2 · macs``: an op without multiplies (shift, pooling, an add) has 0 of both."""
        return 2 * self.macs


@dataclass(frozen=True)
class ModelCount:
    """Per-row counts in the order their modules are first called, and totals.

    ``macs`` and ``bytes`` are the sums over the rows, ``params`` counts every parameter of the model once, and
    ``counter_macs`` is what the flop counter alone saw (without the per-module formulas).
    """

    layers: tuple[LayerCount, ...]
    params: int
    macs: int
    bytes: int
    counter_macs: int

    @property
    def flops(self) -> int:
        return 2 * self.macs


class _Row:
    def __init__(self, name: str, module: nn.Module, layer: bool) -> None:
        self.name = name
        self.module = module
        self.layer = layer
        self.calls = 0
        self.counter_flops = 0
        self.formula_macs: int | None = None
        self.bytes = 0


class _Attribution:
    """Forward hooks that hand every op of a forward pass to the innermost hooked module running it."""

    def __init__(self, model: nn.Module, flop_counter: FlopCounterMode, op_bytes: _OpBytes) -> None:
        self.flop_counter = flop_counter
        self.op_bytes = op_bytes
        self.rows: dict[int, _Row] = {}
        self.order: list[_Row] = []
        self.stack: list[_Row] = []
        self.flops_seen = 0
        self.bytes_seen = 0
        self.handles = []
        for name, module, layer in walk_layers(model):
            row = _Row(name, module, layer)
            self.rows[id(module)] = row
            self.handles.append(module.register_forward_pre_hook(self._enter, with_kwargs=True))
            self.handles.append(module.register_forward_hook(self._leave, with_kwargs=True))

    def _settle(self) -> int:
        """Give the flops and op bytes since the last hook event to the module running now; return those bytes."""
        flops = self.flop_counter.get_total_flops()
        op_bytes = self.op_bytes.total
        moved = op_bytes - self.bytes_seen
        if self.stack:
            row = self.stack[-1]
            row.counter_flops += flops - self.flops_seen
            if not row.layer:
                row.bytes += moved
        self.flops_seen, self.bytes_seen = flops, op_bytes
        return moved

    def _enter(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        self._settle()
        row = self.rows[id(module)]
        if row.calls == 0:
            self.order.append(row)
        row.calls += 1
        self.stack.append(row)

    def _leave(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        moved = self._settle()
        row = self.stack.pop()
        if row.layer:
            # a layer that ran no data-moving op (Identity, Flatten, eval Dropout) moved nothing
            if moved:
                row.bytes += tensor_bytes(args, kwargs) + _weights_bytes(module) + tensor_bytes(output)
            formula = _formula(module)
            if formula is not None:
                row.formula_macs = (row.formula_macs or 0) + int(formula(module, (*args, *kwargs.values()), output))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@contextmanager
def eval_no_grad(model: nn.Module) -> Iterator[None]:
    """Eval mode and ``no_grad`` for the duration; the model's own train/eval flags are restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _row_count(row: _Row) -> LayerCount:
    if row.formula_macs is not None:
        macs, source = row.formula_macs, "formula"
    else:
        macs = row.counter_flops // 2
        source = "flop_counter" if macs else "none"
    params = _param_count(row.module, recurse=row.layer)
    return LayerCount(
        name=row.name,
        type=type(row.module).__name__,
        calls=row.calls,
        params=params,
        macs=macs,
        bytes=row.bytes,
        macs_source=source,
        own_ops=not row.layer,
    )


def count_layers(model: nn.Module, inputs: Sequence[Any], kwargs: dict[str, Any] | None = None) -> ModelCount:
    """Run ``model(*inputs, **kwargs)`` once (eval, ``no_grad``) and count every row; see the module docstring.

    A container that ran no op of its own and owns no parameter of its own gets no row.
    """
    kwargs = kwargs or {}
    flop_counter = FlopCounterMode(display=False, custom_mapping=ATEN_MAC_FORMULAS)
    op_bytes = _OpBytes()
    attribution = _Attribution(model, flop_counter, op_bytes)
    try:
        with eval_no_grad(model), flop_counter, op_bytes:
            model(*inputs, **kwargs)
    finally:
        attribution.remove()
    rows = [_row_count(row) for row in attribution.order]
    rows = [r for r in rows if not r.own_ops or r.macs or r.bytes or r.params]
    return ModelCount(
        layers=tuple(rows),
        params=_param_count(model),
        macs=sum(r.macs for r in rows),
        bytes=sum(r.bytes for r in rows),
        counter_macs=flop_counter.get_total_flops() // 2,
    )


def count_macs(module: nn.Module, *inputs: Any) -> int:
    """Multiply-accumulates of one forward pass: the flop counter's (FLOPs / 2), with the per-module formulas."""
    return count_layers(module, inputs).macs
