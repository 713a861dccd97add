"""Weights from the ecosystem: timm and torchvision models mapped onto the convzoo models they equal (issue 18).

See :mod:`convzoo.interop.sources` (load a source model, state dict or released weights) and
:mod:`convzoo.interop.pairs` (which architectures pair up, and what each mapping changes).
"""

from convzoo.interop.mapping import InteropReport, MappedTensor, Pair, Regroup, map_state
from convzoo.interop.pairs import PAIRS, pairs_for
from convzoo.interop.sources import find_pair, load_pretrained, load_weights, source_model, weight_sources

__all__ = [
    "InteropReport",
    "MappedTensor",
    "Pair",
    "Regroup",
    "map_state",
    "PAIRS",
    "pairs_for",
    "find_pair",
    "load_pretrained",
    "load_weights",
    "source_model",
    "weight_sources",
]
