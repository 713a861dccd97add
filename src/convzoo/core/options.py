"""The one ``KEY=VALUE`` parser: command-line overrides (``--cfg``, ``--option``) and config files alike.

A value is read as a Python literal where it is one (``rank=8``, ``scale=0.5``, ``kernel_sizes=(7, 9)``,
``name='all'``); JSON's spellings ``true``, ``false`` and ``null`` mean ``True``, ``False`` and ``None``
as Python's do; lists become tuples (config dataclasses hold tuples); anything else is a plain string
(``directions=all``). So ``x=True`` and ``x=true`` are the same bool wherever a ``KEY=VALUE`` is taken.

>>> parse_assignments(["rank=8", "layers=[1, 1, 1]", "pretrained=true", "mode=xnor"])
{'rank': 8, 'layers': (1, 1, 1), 'pretrained': True, 'mode': 'xnor'}
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import Any

__all__ = ["parse_value", "parse_assignment", "parse_assignments"]

_JSON_WORDS = {"true": "True", "false": "False", "null": "None"}


def _tuples(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def parse_value(text: str) -> Any:
    """``text`` as a Python literal (JSON's true/false/null included, lists as tuples), else the string itself."""
    stripped = text.strip()
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError:
        return text
    # JSON spellings anywhere in the literal: [true, null] reads as (True, None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _JSON_WORDS:
            node.id = _JSON_WORDS[node.id]
    try:
        return _tuples(ast.literal_eval(ast.unparse(tree)))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"KEY=VALUE"`` → ``(KEY, value)``; ``ValueError`` unless KEY is an identifier."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise ValueError(f"expected KEY=VALUE such as rank=8, got {text!r}")
    return key, parse_value(value)


def parse_assignments(texts: Iterable[str]) -> dict[str, Any]:
    """Several ``KEY=VALUE`` texts as a dict; a key given twice is refused (which of the two was meant?)."""
    parsed: dict[str, Any] = {}
    for text in texts:
        key, value = parse_assignment(text)
        if key in parsed:
            raise ValueError(f"{key} is given twice ({key}={parsed[key]!r} and {text!r})")
        parsed[key] = value
    return parsed
