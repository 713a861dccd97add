"""Counted cost of every registered model beside what its paper publishes (``convzoo models``).

Parameters and MACs are counted on the meta device (shapes only: no memory, nothing computed), at the variant's
registered input size and batch 1.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelCost", "model_costs"]


@dataclass(frozen=True)
class ModelCost:
    """One registered model: counted parameters, the published count and MACs (``None`` where a model has no
    fixed input size, as sequence models, or MACs were not asked for)."""

    name: str
    kind: str
    params: int
    published_params: int | None
    macs: int | None
    input_size: tuple[int, ...] | None
    papers: tuple[str, ...]


def model_costs(pattern: str | None = None, *, macs: bool = True) -> list[ModelCost]:
    """:class:`ModelCost` of each registered model whose name matches the glob ``pattern`` (all for ``None``),
    sorted by name; ``macs=False`` skips counting MACs (faster)."""
    from convzoo.models import list_models
    from convzoo.models.counting import meta_macs, meta_param_count
    from convzoo.registry import MODELS

    costs = []
    for name in list_models(pattern):
        entry = MODELS.get(name)
        counted = meta_param_count(name)
        if entry.kind == "classify":
            info = entry.info
            cost = ModelCost(
                name,
                entry.kind,
                counted,
                info.params,
                meta_macs(name) if macs else None,
                info.input_size,
                tuple(entry.papers),
            )
        else:  # sequence models have no fixed input size to count MACs at
            cost = ModelCost(name, entry.kind, counted, None, None, None, tuple(entry.papers))
        costs.append(cost)
    return costs
