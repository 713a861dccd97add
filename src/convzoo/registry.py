"""One registry type for everything convzoo can build by name: operators, layers, models, transforms.

Every registered thing carries the same metadata, so contract tests, ``convzoo ops`` and
``convzoo catalog`` are generated from the registry rather than from hand-kept lists:

>>> from convzoo.registry import OPS
>>> OPS.get("conv").kind
'grid'

A registry kind with metadata of its own declares it as a dataclass (models: :class:`ModelInfo`);
each entry then carries one instance as ``entry.info``, read by field, never by dict key.

Each registry names the packages whose modules register into it and imports them (every public module
of each) on its first lookup, so ``import convzoo`` stays light (benchmark suites, for instance, load only when a suite
is asked for) and no module below those packages has to import them.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from convzoo.catalog import CatalogEntry, catalog_entries, catalog_keys
from convzoo.core.names import unknown_name_message

__all__ = [
    "Entry",
    "ModelInfo",
    "Registry",
    "UnknownNameError",
    "OPS",
    "LAYERS",
    "MODELS",
    "TRANSFORMS",
    "SUITES",
    "DATASETS",
    "ANALYSES",
    "WEIGHTS",
    "TASKS",
    "OP_KINDS",
    "all_registries",
    "coverage",
]

OP_KINDS = ("grid", "attention", "sequence", "graph", "equivariant", "set", "sparse")

InfoT = TypeVar("InfoT")


class UnknownNameError(ValueError):
    """A name that no registry entry carries; the message lists close matches."""


@dataclass(frozen=True)
class ModelInfo:
    """What the model registry knows about a variant beyond the common metadata.

    ``params`` is the published parameter count for ``num_classes`` classes and ``params_source`` where it
    was published (``None`` for models registered without a count: the sequence models check theirs in their
    tests); ``input_size`` the default ``(C, *S)``; ``test_size`` the smallest convenient input side for
    contract tests and ``test_cfg`` config overrides that make them cheap; ``takes_op`` whether ``op=`` can
    replace its spatial convolutions.
    """

    family: type
    config: Any
    params: int | None = None
    params_source: str = ""
    input_size: tuple[int, ...] = (3, 224, 224)
    takes_op: bool = True
    num_classes: int = 1000
    test_size: int = 32
    test_cfg: dict[str, Any] = field(default_factory=dict)

    def config_fields(self) -> tuple[str, ...]:
        """Names of the fields of the variant's config dataclass (what ``create_model(**cfg)`` may override)."""
        fields = getattr(self.config, "__dataclass_fields__", {})
        return tuple(fields)


@dataclass(frozen=True)
class Entry(Generic[InfoT]):
    """What a registry knows about one registered thing; ``info`` is the registry kind's own metadata."""

    name: str
    obj: Callable[..., Any]
    kind: str
    dims: tuple[int, ...]
    papers: tuple[str, ...]
    linear: bool
    dynamic: bool
    summary: str
    info: InfoT | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.obj(*args, **kwargs)


class Registry(Generic[InfoT]):
    """Name → :class:`Entry`. A duplicate name raises; an unknown name raises with suggestions.

    ``what`` names the registry in messages ("op", "model", ...); ``kinds`` restricts the
    ``kind`` an entry may declare (``None`` allows any); ``info`` is the dataclass every entry's
    metadata must be (``None``: no metadata beyond the common fields); ``packages`` are imported on
    the first lookup, which registers everything they hold.
    """

    def __init__(
        self,
        what: str,
        kinds: tuple[str, ...] | None = None,
        *,
        info: type[InfoT] | None = None,
        packages: tuple[str, ...] = (),
    ) -> None:
        self.what = what
        self.kinds = kinds
        self.info_type = info
        self.packages = packages
        self._entries: dict[str, Entry[InfoT]] = {}
        self._loaded = not packages

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
        info: InfoT | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a class or factory under ``name``.

        ``summary`` defaults to the first line of the object's docstring. Every key in
        ``papers`` must be a catalog key (``convzoo.catalog``).
        """
        if name in self._entries:
            raise ValueError(f"{self.what} {name!r} is already registered (by {self._entries[name].obj!r})")
        if self.kinds is not None and kind not in self.kinds:
            raise ValueError(f"{self.what} {name!r}: kind {kind!r} is not one of {', '.join(self.kinds)}")
        unknown = [p for p in papers if p not in catalog_keys()]
        if unknown:
            raise ValueError(f"{self.what} {name!r}: papers {unknown} are not catalog keys (see `convzoo catalog`)")
        if not dims or any(d not in (1, 2, 3) for d in dims):
            raise ValueError(f"{self.what} {name!r}: dims must be a non-empty subset of (1, 2, 3), got {dims}")
        if self.info_type is not None and not isinstance(info, self.info_type):
            raise TypeError(f"{self.what} {name!r}: info must be a {self.info_type.__name__}, got {info!r}")
        if self.info_type is None and info is not None:
            raise TypeError(f"{self.what} {name!r}: this registry takes no info, got {info!r}")

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
                info=info,
            )
            if isinstance(obj, type):
                obj.registry_name = name
            return obj

        return decorator

    def load(self) -> Registry[InfoT]:
        """Import the packages that register into this registry and all their public modules (once)."""
        if not self._loaded:
            self._loaded = True  # before importing: a module that looks a name up while loading must not recurse
            try:
                for package in self.packages:
                    _import_package(package)
            except BaseException:
                self._loaded = False
                raise
        return self

    def get(self, name: str) -> Entry[InfoT]:
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        return unknown_name_message(self.what, name, self.names())

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, sorted; ``pattern`` is a shell glob such as ``"*conv*"``."""
        self.load()
        return sorted(n for n in self._entries if pattern is None or fnmatch.fnmatchcase(n, pattern))

    def entries(self) -> list[Entry[InfoT]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}, {len(self)} entries)"


OPS: Registry[None] = Registry("op", kinds=OP_KINDS, packages=("convzoo.ops",))
LAYERS: Registry[None] = Registry("layer", kinds=("layer",), packages=("convzoo.layers", "convzoo.ops"))
MODELS: Registry[ModelInfo] = Registry("model", info=ModelInfo, packages=("convzoo.models",))
TRANSFORMS: Registry[None] = Registry("transform", packages=("convzoo.deploy", "convzoo.models"))
SUITES: Registry[None] = Registry("suite", packages=("convzoo.benchmarks",))
DATASETS: Registry[None] = Registry("dataset", packages=("convzoo.data",))
ANALYSES: Registry[None] = Registry("analysis", packages=("convzoo.interpret",))
WEIGHTS: Registry[None] = Registry("weights", kinds=("weights",), packages=("convzoo.interop",))
TASKS: Registry[None] = Registry("task", kinds=("task",), packages=("convzoo.train.tasks",))


def _import_package(name: str) -> None:
    """Import package ``name`` and every module of it whose name does not start with an underscore."""
    package = importlib.import_module(name)
    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{name}.{module.name}")


def all_registries() -> tuple[Registry[Any], ...]:
    """Every registry, each loaded."""
    return tuple(r.load() for r in (OPS, LAYERS, MODELS, TRANSFORMS, SUITES, DATASETS, ANALYSES, TASKS))


def coverage() -> list[tuple[CatalogEntry, list[str]]]:
    """Each catalog seed with the registered things (``"registry:name"``) that cite its key."""
    implementers: dict[str, list[str]] = {}
    for registry in all_registries():
        for entry in registry.entries():
            for key in entry.papers:
                implementers.setdefault(key, []).append(f"{registry.what}:{entry.name}")
    return [(e, sorted(implementers.get(e.key, []))) for e in catalog_entries()]
