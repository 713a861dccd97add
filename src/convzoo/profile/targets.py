"""What ``convzoo profile TARGET`` measures: a registered model, a registered op, or any ``module:factory``,
built as a module with the input shape it runs on.

>>> module, shape = resolve_target("op:shift", channels=16)
>>> type(module).__name__, shape
('SpatialShiftConv', (1, 16, 56, 56))
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from convzoo.core.names import unknown_name_message

__all__ = ["DEFAULT_OP_SIDE", "resolve_target"]

DEFAULT_OP_SIDE = 56  # an op profiled without an input shape runs on (1, C, 56, 56): a ResNet stage-1 feature map


def _build_op(
    name: str,
    input_shape: tuple[int, ...] | None,
    channels: int | None,
    kernel_size: int,
    stride: int,
    options: Mapping[str, Any],
    op: str | None,
) -> tuple[nn.Module, tuple[int, ...]]:
    from convzoo.ops.base import create_op

    if op is not None:
        raise ValueError(f"--op (op=) applies to model targets; op:{name} is an op")
    shape = input_shape or (1, channels or 64, DEFAULT_OP_SIDE, DEFAULT_OP_SIDE)
    if len(shape) < 3:
        raise ValueError(f"op {name!r} needs an input (N, C, *spatial) with 1 to 3 spatial sizes, got {shape}")
    out_channels = channels or shape[1]
    module = create_op(name, shape[1], out_channels, kernel_size, stride, dim=len(shape) - 2, **options)
    return module, shape


def _build_model(
    name: str, input_shape: tuple[int, ...] | None, channels: int | None, options: Mapping[str, Any], op: str | None
) -> tuple[nn.Module, tuple[int, ...]]:
    from convzoo.models import create_model
    from convzoo.registry import MODELS

    entry = MODELS.get(name)
    if channels is not None or options:
        raise ValueError(f"--channels and --option (channels=, options=) apply to op targets; {name!r} is a model")
    shape = input_shape or (1, *entry.info.input_size)
    return create_model(name, op=op), shape


def _build_factory(target: str, input_shape: tuple[int, ...] | None) -> tuple[nn.Module, tuple[int, ...]]:
    module_name, _, attribute = target.partition(":")
    if input_shape is None:
        raise ValueError(f"{target}: a module:factory target needs --input (input_shape=), e.g. 1x3x224x224")
    try:
        factory: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            factory = getattr(factory, part)
    except ImportError as error:
        raise ValueError(f"{target}: cannot import {module_name!r} ({error})") from None
    except AttributeError:
        raise ValueError(f"{target}: module {module_name!r} has no attribute {attribute!r}") from None
    model = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(model, nn.Module):
        raise TypeError(f"{target}: expected a factory returning an nn.Module, got {type(model).__name__}")
    return model, input_shape


def resolve_target(
    target: str,
    *,
    input_shape: Sequence[int] | None = None,
    channels: int | None = None,
    kernel_size: int = 3,
    stride: int = 1,
    options: Mapping[str, Any] | None = None,
    op: str | None = None,
) -> tuple[nn.Module, tuple[int, ...]]:
    """``(module, input_shape)`` for ``op:NAME``, ``model:NAME``, a model or op name, or ``module:factory``.

    An op is built ``C → channels`` (default ``C``) with ``kernel_size``, ``stride`` and ``options`` on
    ``input_shape`` (default ``(1, channels or 64, 56, 56)``); a model with ``op`` as its spatial mixer on
    ``input_shape`` (default its registered input size); a factory is called with no arguments and needs
    ``input_shape``. An unknown name raises ``ValueError`` with close matches.
    """
    from convzoo.registry import MODELS, OPS

    shape = tuple(input_shape) if input_shape is not None else None
    options = dict(options or {})
    kind, sep, rest = target.partition(":")
    if (sep and kind == "op") or (not sep and target not in MODELS and target in OPS):
        return _build_op(rest if sep else target, shape, channels, kernel_size, stride, options, op)
    if (sep and kind == "model") or (not sep and target in MODELS):
        return _build_model(rest if sep else target, shape, channels, options, op)
    if sep:
        return _build_factory(target, shape)
    known = MODELS.names() + [f"op:{name}" for name in OPS.names()]
    expected = "a registered model, op:NAME from `convzoo ops`, or module:factory"
    raise ValueError(f"{unknown_name_message('target', target, known)}; a target is {expected}")
