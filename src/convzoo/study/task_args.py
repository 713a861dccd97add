"""What every task study reads from ``convzoo study``'s namespace (see :mod:`convzoo.commands.study`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from convzoo.core.options import parse_assignments

__all__ = ["task_options", "refuse_flags", "model_names", "given_settings"]

SETTINGS = ("epochs", "batch_size", "lr", "seeds", "out", "threads", "repeats", "data")


def task_options(args: argparse.Namespace, task: str, known: Sequence[str]) -> dict[str, Any]:
    """The ``--option KEY=VALUE`` settings; a key the study does not take is a ``ValueError`` naming those it does."""
    options = parse_assignments(args.option or [])
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(
            f"study --task {task}: no option {', '.join(map(repr, unknown))} (its options: {', '.join(known)})"
        )
    return options


def refuse_flags(args: argparse.Namespace, task: str, names: Sequence[str], hint: str) -> None:
    """A ``ValueError`` for any of the flags ``names`` given: they belong to the classify study."""
    for name in names:
        if getattr(args, name, None) is not None:
            raise ValueError(f"study --task {task}: --{name} is not for the {task} study; {hint}")


def model_names(args: argparse.Namespace) -> tuple[str, ...]:
    """``--models`` as a tuple of names (empty: the study's default models)."""
    return () if args.models is None else tuple(m.strip() for m in args.models.split(",") if m.strip())


def given_settings(args: argparse.Namespace, names: Sequence[str] = SETTINGS) -> dict[str, Any]:
    """The shared flags among ``names`` that the user gave (``None`` means "the study's default")."""
    return {name: value for name in names if (value := getattr(args, name, None)) is not None}
