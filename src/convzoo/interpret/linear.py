"""Linear interpreter (S10, linearscope): a network replayed as the input-dependent affine map ``A(x₀)·x + b(x₀)``.

One recording forward pass at ``x₀`` stores what every non-linear unit decided; the replay runs the same
network with those decisions frozen, which makes it exactly affine in its input. At ``x₀`` the replay equals
the network, so ``A·x₀ + b = f(x₀)`` holds with the bias ``b`` (the replay of zero) included.

What is frozen, by function (matched by name, so ``nn.ReLU``, ``F.relu`` and ``x.relu()`` are one unit):

- gate activations ``φ(x) = x·g(x)`` with ``φ(0) = 0`` (ReLU, leaky ReLU, ReLU6, GELU, SiLU, hardswish, Mish,
  ELU): replayed as ``x · g(x₀)``, the secant gate (the ReLU mask for ReLU);
- max pooling: replayed by gathering at the recorded arg-max positions (the switches);
- layer/group norm: the standard deviation is frozen, the mean subtraction and affine part stay linear;
- a product (``mul``, ``matmul``, ``bmm``, ``einsum``) of two input-dependent tensors (gⁿConv, GLU, attention):
  the right-hand factor is frozen; a division by an input-dependent tensor freezes the divisor;
- any other non-linear function of the input (sigmoid, softmax, exp, sqrt, ...): its output is frozen to the
  recorded value (a constant gate). Functions not known to be linear are listed in ``frozen_unknown``.

Dependence on the input is tracked by autograd: during both passes the parameters stop requiring grad and the
input requires it, so ``tensor.requires_grad`` means "depends on the input".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten

from convzoo.registry import ANALYSES

__all__ = ["LinearInterpreter", "linear_interpreter", "linear_contributions"]


def _words(text: str) -> list[str]:
    return text.split()


_GATES: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": lambda x: (x > 0).to(x.dtype),
    "relu_": lambda x: (x > 0).to(x.dtype),
    "relu6": lambda x: torch.where(x > 0, torch.clamp(x, max=6.0) / x.clamp(min=1e-30), torch.zeros_like(x)),
    "gelu": lambda x: 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "silu": torch.sigmoid,
    "silu_": torch.sigmoid,
    "hardswish": lambda x: torch.clamp(x + 3.0, 0.0, 6.0) / 6.0,
    "hardswish_": lambda x: torch.clamp(x + 3.0, 0.0, 6.0) / 6.0,
    "mish": lambda x: torch.tanh(torch.nn.functional.softplus(x)),
}
# φ(x)/x for the rest of the φ(0) = 0 activations, computed from the recorded output
_SECANT = {"leaky_relu", "leaky_relu_", "elu", "elu_", "hardtanh", "hardtanh_", "celu", "selu", "tanh", "tanh_"}
_LINEAR = frozenset(
    _words(
        """
        conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d linear add add_ __add__ __radd__
        __iadd__ sub sub_ __sub__ __rsub__ __isub__ neg __neg__ mean sum view view_as reshape reshape_as flatten
        unflatten permute transpose movedim moveaxis contiguous __getitem__ cat concat concatenate stack chunk
        split split_with_sizes tensor_split unbind squeeze unsqueeze pad avg_pool1d avg_pool2d avg_pool3d
        adaptive_avg_pool1d adaptive_avg_pool2d adaptive_avg_pool3d batch_norm dropout dropout1d dropout2d
        dropout3d alpha_dropout feature_alpha_dropout roll flip expand expand_as repeat narrow select clone to
        type_as float double pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle interpolate
        upsample mul mul_ __mul__ __rmul__ __imul__ div div_ __truediv__ __itruediv__ matmul __matmul__ bmm mm
        einsum t mT unfold fold diagonal tile repeat_interleave index_select gather cumsum fft_rfftn fft_irfftn
        fft_fftn fft_ifftn real __setitem__ copy_ zero_ new_zeros new_ones zeros_like ones_like full_like __len__
        size dim numel requires_grad_ detach _has_compatible_shallow_copy_type
        """
    )
)
# non-linear functions whose output is a known constant gate once frozen (SE's sigmoid, attention's softmax, ...)
_FROZEN_OUTPUT = frozenset(
    _words(
        """
        sigmoid sigmoid_ hardsigmoid hardsigmoid_ softmax log_softmax exp sqrt rsqrt pow __pow__ reciprocal abs
        norm var std amax amin max min logsumexp softplus
        """
    )
)
_PRODUCTS = {"mul", "mul_", "__mul__", "__rmul__", "__imul__", "matmul", "__matmul__", "bmm", "mm", "einsum"}
_DIVISIONS = {"div", "div_", "__truediv__", "__itruediv__"}
_NORMS = {"layer_norm", "group_norm"}
_MAX_POOLS = {"max_pool1d": 1, "max_pool2d": 2, "max_pool3d": 3}
_IGNORED = {"__get__", "__set__", "__repr__", "__format__", "__bool__", "__hash__", "__eq__", "__ne__", "__lt__"}


def _dependent(value: Any) -> list[Tensor]:
    return [t for t in tree_flatten(value)[0] if isinstance(t, Tensor) and t.requires_grad]


def _name(func: Any) -> str:
    return getattr(func, "__name__", repr(func))


class _Scope(TorchFunctionMode):
    """Records (``replay=False``) or replays (``replay=True``) the non-linear decisions of one forward pass."""

    def __init__(self, record: list[tuple[str, Any]] | None, unknown: list[str]) -> None:
        super().__init__()
        self.replay = record is not None
        self.record: list[tuple[str, Any]] = record if record is not None else []
        self.unknown = unknown
        self.step = 0

    def _state(self, name: str, compute: Callable[[], Any]) -> Any:
        if not self.replay:
            state = compute()
            self.record.append((name, state))
            return state
        if self.step >= len(self.record) or self.record[self.step][0] != name:
            expected = self.record[self.step][0] if self.step < len(self.record) else "the end of the pass"
            raise RuntimeError(
                f"linear interpreter: the replay called {name!r} where the recording had {expected!r}; "
                "the model's control flow depends on its input"
            )
        self.step += 1
        return self.record[self.step - 1][1]

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: C901 (one dispatch table)
        kwargs = kwargs or {}
        name = _name(func)
        if name in _IGNORED or name in _LINEAR and name not in _PRODUCTS and name not in _DIVISIONS:
            return func(*args, **kwargs)
        dependent = _dependent((args, kwargs))
        if not dependent:
            return func(*args, **kwargs)
        x = args[0] if args else next(iter(kwargs.values()))
        if name in _GATES or name in _SECANT:
            gate = self._state(name, lambda: self._gate(name, func, x, args[1:], kwargs))
            return x.mul_(gate) if name.endswith("_") else x * gate
        if name in _MAX_POOLS:
            return self._max_pool(name, func, args, kwargs)
        if name in _NORMS:
            return self._norm(name, args, kwargs)
        if name in _PRODUCTS:
            return self._product(name, func, args, kwargs)
        if name in _DIVISIONS:
            if isinstance(args[1], Tensor) and args[1].requires_grad:
                divisor = self._state(name, lambda: args[1].detach())
                return func(args[0], divisor, *args[2:], **kwargs)
            return func(*args, **kwargs)
        # an unknown function of the input: freeze its output (a constant gate)
        if not self.replay and name not in _FROZEN_OUTPUT and name not in self.unknown:
            self.unknown.append(name)
        result = self._state(name, lambda: _detach(func(*args, **kwargs)))
        return result

    @staticmethod
    def _gate(name: str, func: Any, x: Tensor, rest: tuple, kwargs: dict) -> Tensor:
        with torch.no_grad():
            if name in _GATES:
                if name == "gelu" and kwargs.get("approximate", "none") == "tanh":
                    return func(x, *rest, **kwargs) / torch.where(x == 0, torch.ones_like(x), x)
                return _GATES[name](x.detach())
            kwargs = {k: v for k, v in kwargs.items() if k != "inplace"}
            out = func(x.detach().clone(), *rest, **kwargs)
            return torch.where(x == 0, torch.zeros_like(x), out / torch.where(x == 0, torch.ones_like(x), x))

    def _max_pool(self, name: str, func: Any, args: tuple, kwargs: dict) -> Tensor:
        x = args[0]
        spatial = _MAX_POOLS[name]
        kwargs = {**kwargs, "return_indices": True}
        if (
            len(args) > 5
        ):  # positional return_indices of F.max_poolNd(input, k, stride, padding, dilation, ceil_mode, ...)
            args = args[:6]

        def compute() -> Tensor:
            with torch.no_grad():
                return func(x.detach(), *args[1:], **kwargs)[1]

        indices = self._state(name, compute)
        flat = x.flatten(-spatial)  # (N, C, prod(S))
        return flat.gather(-1, indices.flatten(-spatial)).view(indices.shape)

    def _norm(self, name: str, args: tuple, kwargs: dict) -> Tensor:
        names = ("input", "normalized_shape" if name == "layer_norm" else "num_groups", "weight", "bias", "eps")
        bound = dict(zip(names, args, strict=False)) | kwargs
        x, weight, bias, eps = bound["input"], bound.get("weight"), bound.get("bias"), bound.get("eps", 1e-5)
        if name == "layer_norm":
            dims = tuple(range(-len(bound["normalized_shape"]), 0))
            grouped = x
        else:
            grouped = x.reshape(x.shape[0], bound["num_groups"], -1)  # (N, G, C/G·S)
            dims = (-1,)
        centred = grouped - grouped.mean(dims, keepdim=True)
        std = self._state(name, lambda: torch.sqrt(centred.detach().pow(2).mean(dims, keepdim=True) + eps))
        y = (centred / std).reshape(x.shape)
        if name == "group_norm":
            shape = (1, -1) + (1,) * (x.dim() - 2)  # per-channel affine of (N, C, *S)
            weight = None if weight is None else weight.view(shape)
            bias = None if bias is None else bias.view(shape)
        if weight is not None:
            y = y * weight
        return y if bias is None else y + bias

    def _product(self, name: str, func: Any, args: tuple, kwargs: dict) -> Tensor:
        if name == "einsum":
            operands = list(args[1]) if len(args) == 2 and isinstance(args[1], list | tuple) else list(args[1:])
            moving = [i for i, t in enumerate(operands) if isinstance(t, Tensor) and t.requires_grad]
            if len(moving) < 2:
                return func(*args, **kwargs)
            frozen = self._state(name, lambda: [operands[i].detach() for i in moving[1:]])
            for i, value in zip(moving[1:], frozen, strict=True):
                operands[i] = value
            return func(args[0], *operands)
        left, right = args[0], args[1]
        both = all(isinstance(t, Tensor) and t.requires_grad for t in (left, right))
        if not both:
            return func(*args, **kwargs)
        right = self._state(name, lambda: right.detach())
        return func(left, right, *args[2:], **kwargs)


def _detach(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.detach()
    if isinstance(value, tuple | list):
        return type(value)(_detach(v) for v in value)
    return value


@contextmanager
def _frozen_parameters(model: nn.Module) -> Iterator[None]:
    """Parameters stop requiring grad (so only the input's dependence is tracked) and the model is in eval mode."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    training = model.training
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(training)


@dataclass
class LinearInterpreter:
    """The affine map ``x ↦ A·x + b`` that ``model`` computes at ``x0`` (S10's LinearScope).

    ``output``: ``f(x0)``; ``bias``: ``b`` (the replay of a zero input); :meth:`apply` is ``A·v``,
    :meth:`transpose` is ``Aᵀ·u`` (the network replayed backwards); :meth:`matrix` is ``A`` itself,
    ``(out_numel, in_numel)``. ``frozen_unknown`` names functions frozen without a known linear form.
    """

    model: nn.Module
    x0: Tensor
    record: list[tuple[str, Any]]
    output: Tensor
    frozen_unknown: list[str] = field(default_factory=list)
    _bias: Tensor | None = None

    def replay(self, v: Tensor) -> Tensor:
        """The frozen network at ``v`` (``A·v + b``); ``v`` has ``x0``'s shape."""
        if v.shape != self.x0.shape:
            raise ValueError(
                f"linear interpreter: expected an input of shape {tuple(self.x0.shape)}, got {tuple(v.shape)}"
            )
        scope = _Scope(self.record, self.frozen_unknown)
        with _frozen_parameters(self.model), torch.enable_grad(), scope:
            out = self.model(v if v.requires_grad else v.detach().requires_grad_(True))
        if scope.step != len(self.record):
            raise RuntimeError(
                "linear interpreter: the replay stopped early; the model's control flow depends on its input"
            )
        return out

    @property
    def bias(self) -> Tensor:
        if self._bias is None:
            self._bias = self.replay(torch.zeros_like(self.x0)).detach()
        return self._bias

    def apply(self, v: Tensor) -> Tensor:
        """``A·v``: the linear part of the frozen network."""
        return self.replay(v) - self.bias

    def transpose(self, u: Tensor) -> Tensor:
        """``Aᵀ·u``: ``u`` has the output's shape; the result the input's (one backward pass of the frozen net)."""
        v = torch.zeros_like(self.x0, requires_grad=True)
        (grad,) = torch.autograd.grad(self.replay(v), v, grad_outputs=u)
        return grad

    def matrix(self) -> Tensor:
        """``A`` as a dense ``(out_numel, in_numel)`` matrix, one backward pass per output (small outputs only)."""
        rows = []
        flat = self.output.reshape(-1)
        for index in range(flat.numel()):
            u = torch.zeros_like(flat)
            u[index] = 1.0
            rows.append(self.transpose(u.view_as(self.output)).reshape(-1))
        return torch.stack(rows)  # (out_numel, in_numel)


@ANALYSES.register(
    "linear_interpreter",
    kind="analysis",
    papers=("linearscope",),
    summary="replay a network as the input-dependent affine map of one forward pass (S10)",
)
def linear_interpreter(model: nn.Module, x0: Tensor) -> LinearInterpreter:
    """Record ``model``'s non-linear decisions at ``x0`` and return its linear interpreter (S10).

    >>> net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1))
    >>> x = torch.randn(1, 1, 4, 4)
    >>> li = linear_interpreter(net, x)
    >>> torch.allclose(li.apply(x) + li.bias, net(x), atol=1e-6)
    True
    """
    unknown: list[str] = []
    scope = _Scope(None, unknown)
    with _frozen_parameters(model), torch.enable_grad(), scope:
        output = model(x0.detach().requires_grad_(True))
    return LinearInterpreter(model, x0.detach(), scope.record, output.detach(), unknown)


def linear_contributions(model: nn.Module, x: Tensor, target: int | None = None) -> tuple[Tensor, Tensor, float]:
    """Per-input contributions of the linear interpreter to one output: ``(row, row ⊙ x, bias)``.

    ``row`` is the row of ``A`` for output ``target`` (the arg-max class of the first sample by default);
    ``(row ⊙ x).sum() + bias`` equals that output exactly.
    """
    interpreter = linear_interpreter(model, x)
    out = interpreter.output.reshape(x.shape[0], -1)
    target = int(out[0].argmax()) if target is None else target
    u = torch.zeros_like(out)
    u[:, target] = 1.0
    row = interpreter.transpose(u.view_as(interpreter.output))
    return row, row * x, float(interpreter.bias.reshape(x.shape[0], -1)[0, target])
