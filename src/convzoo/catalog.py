"""The catalog of systems from the convolution literature that convzoo covers (shared CATALOG.md).

``catalog.tsv`` ships the key table: one row per seed paper (``S#``), its catalog key, the
catalog section and the paper's title. Registry entries cite these keys in ``papers=``;
:func:`convzoo.registry.coverage` joins the two.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["CatalogEntry", "SECTIONS", "catalog_entries", "catalog_keys"]

SECTIONS = {
    "A": "Convolution operators",
    "B": "Architectures",
    "C": "Super-resolution",
    "D": "Efficiency: deploy and analysis",
    "E": "Dense prediction and 3D",
    "F": "Sequences, audio, 1D",
    "G": "Graphs, groups, spheres",
    "H": "Generative",
    "I": "Learning recipes",
    "J": "Analysis and interpretability",
}


@dataclass(frozen=True)
class CatalogEntry:
    seed: int
    key: str
    section: str
    title: str

    @property
    def label(self) -> str:
        return f"S{self.seed}"


@cache
def catalog_entries() -> tuple[CatalogEntry, ...]:
    """Every seed of the catalog, in seed order."""
    text = resources.files("convzoo").joinpath("catalog.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return tuple(CatalogEntry(int(r["seed"]), r["key"], r["section"], r["title"]) for r in rows)


@cache
def catalog_keys() -> frozenset[str]:
    return frozenset(e.key for e in catalog_entries())
