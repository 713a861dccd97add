"""Helpers shared by the subcommands: plain-text tables, argument types, usage errors."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["UsageError", "table", "positive_int", "parse_shape"]


class UsageError(Exception):
    """A bad command line detected after parsing; reported as one line, exit status 2."""


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A left-aligned plain-text table with a rule under the header."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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
