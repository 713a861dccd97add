"""One registry type for everything convzoo can build by name: operators, layers, models, transforms.

Every registered thing carries the same metadata, so contract tests, ``convzoo ops`` and
``convzoo catalog`` are generated from the registry rather than from hand-kept lists:

>>> from convzoo.registry import OPS
>>> OPS.get("conv").kind
'grid'
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "Entry",
    "Registry",
    "UnknownNameError",
    "OPS",
    "LAYERS",
    "MODELS",
    "TRANSFORMS",
    "SUITES",
    "DATASETS",
    "OP_KINDS",
    "all_registries",
]

OP_KINDS = ("grid", "attention", "sequence", "graph", "equivariant", "set")


class UnknownNameError(ValueError):
    """A name that no registry entry carries; the message lists close matches."""


@dataclass(frozen=True)
class Entry:
    """What a registry knows about one registered thing."""

    name: str
    obj: Callable[..., Any]
    kind: str
    dims: tuple[int, ...]
    papers: tuple[str, ...]
    linear: bool
    dynamic: bool
    summary: str
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.obj(*args, **kwargs)


class Registry:
    """Name → :class:`Entry`. A duplicate name raises; an unknown name raises with suggestions.

    ``what`` names the registry in messages ("op", "model", ...); ``kinds`` restricts the
    ``kind`` an entry may declare (``None`` allows any).
    """

    def __init__(self, what: str, kinds: tuple[str, ...] | None = None) -> None:
        self.what = what
        self.kinds = kinds
        self._entries: dict[str, Entry] = {}

    def register(
        self,
        name: str,
        *,
        kind: str,
        dims: tuple[int, ...] = (2,),
        papers: tuple[str, ...] = (),
        linear: bool = False,
        dynamic: bool = False,
        summary: str | None = None,
        **extra: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a class or factory under ``name``.

        ``summary`` defaults to the first line of the object's docstring. Every key in
        ``papers`` must be a catalog key (``convzoo.catalog``).
        """
        from convzoo.catalog import catalog_keys

        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is already registered (by {self._entries[name].obj!r})")
        if self.kinds is not None and kind not in self.kinds:
            raise ValueError(f"{self.what} {name!r}: kind {kind!r} is not one of {', '.join(self.kinds)}")
        unknown = [p for p in papers if p not in catalog_keys()]
        if unknown:
            raise ValueError(f"{self.what} {name!r}: papers {unknown} are not catalog keys (see `convzoo catalog`)")
        if not dims or any(d not in (1, 2, 3) for d in dims):
            raise ValueError(f"{self.what} {name!r}: dims must be a non-empty subset of (1, 2, 3), got {dims}")

        def decorator(obj: Callable[..., Any]) -> Callable[..., Any]:
            doc = (obj.__doc__ or "").strip().splitlines()
            line = summary or (doc[0].strip() if doc else "")
            if not line:
                raise ValueError(f"{self.what} {name!r} needs a summary or a docstring")
            self._entries[name] = Entry(
                name=name,
                obj=obj,
                kind=kind,
                dims=tuple(dims),
                papers=tuple(papers),
                linear=linear,
                dynamic=dynamic,
                summary=line,
                extra=MappingProxyType(dict(extra)),
            )
            if isinstance(obj, type):
                obj.registry_name = name
            return obj

        return decorator

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), list(self._entries), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        names = self.names()
        shown = ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")
        return f"unknown {self.what} {name!r}{hint} (known: {shown})"

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, sorted; ``pattern`` is a shell glob such as ``"*conv*"``."""
        return sorted(n for n in self._entries if pattern is None or fnmatch.fnmatchcase(n, pattern))

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self)} entries)"


OPS = Registry("op", kinds=OP_KINDS)
LAYERS = Registry("layer", kinds=("layer",))
MODELS = Registry("model")
TRANSFORMS = Registry("transform")
SUITES = Registry("suite")
DATASETS = Registry("dataset")


def all_registries() -> tuple[Registry, ...]:
    import convzoo  # noqa: F401  (importing the package registers everything)

    return (OPS, LAYERS, MODELS, TRANSFORMS, SUITES, DATASETS)
