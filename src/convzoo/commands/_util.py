"""Helpers shared by the subcommands: plain-text tables, argument types, ``KEY=VALUE`` flags, usage errors."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

from convzoo.core.options import parse_assignments
from convzoo.profile.report import text_table

__all__ = ["UsageError", "table", "positive_int", "parse_shape", "assignments"]


class UsageError(Exception):
    """A bad command line detected after parsing; reported as one line, exit status 2."""


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned plain-text table with a rule under the header."""
    return text_table(headers, rows)


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def parse_shape(text: str) -> tuple[int, ...]:
    """argparse type: a shape such as ``1x3x224x224`` (every size ≥ 1)."""
    parts = text.lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1x3x224x224, got {text!r}") from None
    if len(shape) < 2 or any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"expected a shape like 1x3x224x224 with positive sizes, got {text!r}")
    return shape


def assignments(flag: str, texts: Iterable[str] | None) -> dict[str, Any]:
    """The ``KEY=VALUE`` texts of a repeatable ``flag`` as a dict, read by :mod:`convzoo.core.options` (the one
    parser: ``x=True`` and ``x=true`` are the same bool for every command); a bad text is a usage error."""
    try:
        return parse_assignments(texts or ())
    except ValueError as error:
        raise UsageError(f"{flag}: {error}") from None
