"""Argument checks shared by every operator, layer, model and command.

Each check returns the value it accepted and raises with the project's one message form,
``"{owner}: {what} must be {expected}, got {value!r}"``: the thing that refused (an operator, a
model, a function), the argument, what it takes and what it was given.

>>> check_int(3, "groups", "conv")
3
>>> check_int(0, "groups", "conv")
Traceback (most recent call last):
...
ValueError: conv: groups must be a positive int, got 0
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

__all__ = [
    "is_int",
    "check_int",
    "check_odd",
    "check_number",
    "check_choice",
    "check_groups",
    "check_dim",
    "check_conv_args",
    "ntuple",
    "is_number",
]

T = TypeVar("T")


def is_int(value: object) -> bool:
    """``True`` for an ``int`` that is not a ``bool`` (``True`` is an ``int`` to Python, not to convzoo)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _int_phrase(low: int, high: int | None) -> str:
    if high is not None:
        return f"an int in [{low}, {high}]"
    return {0: "an int ≥ 0", 1: "a positive int"}.get(low, f"an int ≥ {low}")


def check_int(value: Any, what: str, owner: str, *, low: int = 1, high: int | None = None) -> int:
    """``value`` if it is an int in ``[low, high]`` (default: a positive int); ``ValueError`` otherwise."""
    if not is_int(value) or value < low or (high is not None and value > high):
        raise ValueError(f"{owner}: {what} must be {_int_phrase(low, high)}, got {value!r}")
    return value


def check_odd(value: Any, what: str, owner: str, *, low: int = 1) -> int:
    """``value`` if it is an odd int ≥ ``low`` (kernel sizes with symmetric "same" padding)."""
    if not is_int(value) or value < low or value % 2 == 0:
        raise ValueError(f"{owner}: {what} must be an odd int ≥ {low}, got {value!r}")
    return value


def check_number(
    value: Any,
    what: str,
    owner: str,
    *,
    low: float | None = 0.0,
    high: float | None = None,
    low_open: bool = True,
    high_open: bool = False,
) -> float:
    """``value`` if it is a finite real number in the interval (default ``(0, ∞)``); ``ValueError`` otherwise.

    ``low``/``high`` of ``None`` leave that side unbounded; ``low_open``/``high_open`` exclude the bound.
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(f"{owner}: {what} must be {_interval(low, high, low_open, high_open)}, got {value!r}")
    return value


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is None and high is None:
        return "a finite number"
    if high is None:
        return f"a number {'>' if low_open else '≥'} {low:g}"
    if low is None:
        return f"a number {'<' if high_open else '≤'} {high:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_choice(value: T, choices: Collection[T], what: str, owner: str) -> T:
    """``value`` if it is one of ``choices``; ``ValueError`` naming them otherwise."""
    if value not in choices:
        raise ValueError(f"{owner}: {what} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_groups(groups: Any, owner: str, **channels: int) -> int:
    """``groups`` if it is a positive int dividing every channel count given by keyword.

    >>> check_groups(4, "conv", in_channels=8, out_channels=6)
    Traceback (most recent call last):
    ...
    ValueError: conv: in_channels (8) and out_channels (6) must both be divisible by groups (4)
    """
    check_int(groups, "groups", owner)
    if any(count % groups for count in channels.values()):
        named = " and ".join(f"{name} ({count})" for name, count in channels.items())
        both = " both" if len(channels) == 2 else (" all" if len(channels) > 2 else "")
        raise ValueError(f"{owner}: {named} must{both} be divisible by groups ({groups})")
    return groups


def check_dim(dim: Any, owner: str, dims: Sequence[int] = (1, 2, 3)) -> int:
    """``dim`` if it is one of the spatial dimensionalities ``dims``."""
    if not is_int(dim) or dim not in dims:
        allowed = ", ".join(map(str, dims[:-1])) + (f" or {dims[-1]}" if len(dims) > 1 else str(dims[-1]))
        raise ValueError(f"{owner}: dim must be {allowed}, got {dim!r}")
    return dim


def ntuple(value: int | Sequence[int], dim: int, what: str, owner: str) -> tuple[int, ...]:
    """``value`` as a ``dim``-tuple of ints; raises naming ``owner`` and ``what`` otherwise."""
    if isinstance(value, bool):
        raise TypeError(f"{owner}: {what} must be an int or a tuple of {dim} ints, got {value!r}")
    if isinstance(value, int):
        return (value,) * dim
    values = tuple(value)
    if len(values) != dim or not all(is_int(v) for v in values):
        raise ValueError(f"{owner}: {what} must be an int or a tuple of {dim} ints for dim={dim}, got {value!r}")
    return values


def check_conv_args(
    owner: str,
    in_channels: Any,
    out_channels: Any,
    kernel_size: Any,
    stride: Any,
    dim: Any,
    *,
    same_channels: bool = False,
    odd_kernel: bool = True,
    max_stride: int | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The convolution contract's arguments checked once for every operator and conv-like layer.

    Returns ``(kernel_size, stride)`` as ``dim``-tuples. ``same_channels``: ``in_channels`` must equal
    ``out_channels``; ``odd_kernel``: every kernel size odd (symmetric "same" padding); ``max_stride``: the
    largest stride honoured.
    """
    check_dim(dim, owner)
    check_int(in_channels, "in_channels", owner)
    check_int(out_channels, "out_channels", owner)
    if same_channels and in_channels != out_channels:
        raise ValueError(
            f"{owner}: in_channels must equal out_channels (it keeps the channels it mixes or reweights), "
            f"got {in_channels} -> {out_channels}"
        )
    kernel = ntuple(kernel_size, dim, "kernel_size", owner)
    if any(k < 1 for k in kernel):
        raise ValueError(f"{owner}: kernel_size must be positive, got {kernel_size!r}")
    if odd_kernel and any(k % 2 == 0 for k in kernel):
        raise ValueError(f"{owner}: kernel_size must be odd for symmetric 'same' padding, got {kernel_size!r}")
    strides = ntuple(stride, dim, "stride", owner)
    if any(s < 1 for s in strides):
        raise ValueError(f"{owner}: stride must be positive, got {stride!r}")
    if max_stride is not None and any(s > max_stride for s in strides):
        raise ValueError(f"{owner}: stride must be at most {max_stride}, got {stride!r}")
    return kernel, strides


def is_number(value: object) -> bool:
    """``True`` for a finite ``int`` or ``float`` that is not a ``bool``: what :func:`check_number` accepts as a number.

    For checks whose message must say more than :func:`check_number`'s interval (``"a probability in [0, 1]"``).
    """
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
