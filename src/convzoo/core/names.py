"""Close-match suggestions for unknown names ("did you mean ...?"), used by registries and commands."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches", "unknown_name_message"]


def close_matches(name: object, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` names of ``known`` that look like ``name``, best first."""
    return difflib.get_close_matches(str(name), list(known), n=n, cutoff=0.5)


def unknown_name_message(what: str, name: object, known: Iterable[str], *, shown: int = 12) -> str:
    """``unknown {what} 'nmae'; did you mean 'name'? (known: a, b, … (N in all))``."""
    known = sorted(known)
    close = close_matches(name, known)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listed = ", ".join(known[:shown]) + (f", … ({len(known)} in all)" if len(known) > shown else "")
    return f"unknown {what} {name!r}{hint} (known: {listed})"
