"""The mapping engine: a source state dict (timm, torchvision) onto a convzoo model, tensor by tensor, reported.

A :class:`Pair` says how one source architecture's tensors line up with one convzoo model's. Both state dicts
list their tensors in module order; where the two families register a block's parts in another order (timm's
ConvNeXt keeps ``gamma`` first, convzoo its layer scale last) a :class:`Regroup` reorders the source keys of
each such block. Source edits (``edits``: InceptionNeXt's three branch biases concatenated, TResNet's
space-to-depth channel order) run before the pairing, model edits (``adjust``: EfficientNet's BN eps, the
legacy SE-ResNet-50 layout) after it, so that the loaded convzoo model computes what the source computes.

Every pairing is checked: the two lists have the same length, each pair the same shape (or the same shape
once singleton dims are dropped: a 1×1 conv's ``(O, I, 1, 1)`` onto a linear's ``(O, I)``), and the same kind
of tensor where both names say it (weight, bias, running mean, running variance). Anything else raises
``ValueError`` naming both keys. The output equality of every pair is what the peer tests check.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import Tensor, nn

__all__ = ["Regroup", "Pair", "MappedTensor", "InteropReport", "map_state", "set_norm_eps"]

SourceEdit = Callable[[dict[str, Tensor]], list[str]]
ModelEdit = Callable[[nn.Module], list[str]]


@dataclass(frozen=True)
class Regroup:
    """Reorder the source keys of each block: keys starting with a match of ``group`` (a regex) form a block
    when consecutive, and are stably sorted by the first pattern of ``order`` their remainder matches
    (``"*"`` stands for every remainder no other pattern matches)."""

    group: str
    order: tuple[str, ...]

    def apply(self, keys: list[str]) -> list[str]:
        pattern = re.compile(self.group)
        rest = self.order.index("*") if "*" in self.order else len(self.order)

        def rank(remainder: str) -> int:
            for i, p in enumerate(self.order):
                if p != "*" and re.match(p, remainder):
                    return i
            return rest

        out: list[str] = []
        run: list[tuple[int, str]] = []
        run_prefix: str | None = None
        for key in [*keys, None]:
            match = pattern.match(key) if key is not None else None
            prefix = match.group(0) if match else None
            if run and prefix != run_prefix:
                out += [k for _, k in sorted(run, key=lambda item: item[0])]
                run = []
            run_prefix = prefix
            if key is None:
                break
            if prefix is None:
                out.append(key)
            else:
                run.append((rank(key[len(prefix) :]), key))
        return out


@dataclass(frozen=True)
class Pair:
    """How the tensors of ``source``'s ``arch`` (``"timm"`` or ``"torchvision"``) map onto convzoo's ``model``.

    ``differs`` says, for the report, what the mapping has to change beyond renaming (empty: nothing);
    ``keep`` are regexes of convzoo tensors the source does not have (they keep their values, and are reported);
    ``settings`` gives the further source edits a source model's own settings call for (torchvision's Inception-v3
    ``transform_input``), when the source is a model rather than a state dict.
    """

    model: str
    source: str
    arch: str
    regroup: tuple[Regroup, ...] = ()
    edits: tuple[SourceEdit, ...] = ()
    adjust: tuple[ModelEdit, ...] = ()
    differs: str = ""
    keep: tuple[str, ...] = ()
    settings: Callable[[nn.Module], tuple[SourceEdit, ...]] | None = None

    @property
    def spec(self) -> str:
        return f"{self.source}:{self.arch}"


@dataclass(frozen=True)
class MappedTensor:
    """One convzoo tensor and the source tensor it was loaded from (``note``: a reshape, a merge)."""

    target: str
    source: str
    shape: tuple[int, ...]
    note: str = ""


@dataclass
class InteropReport:
    """Every tensor :func:`map_state` loaded, and every change it made to the model to match the source."""

    model: str
    source: str
    differs: str = ""
    mapped: list[MappedTensor] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    adjusted: list[str] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"{self.source} -> {self.model}: {len(self.mapped)} tensors mapped, {len(self.kept)} kept, "
            f"{len(self.edited)} source edits, {len(self.adjusted)} model adjustments"
        ]
        if self.differs:
            lines.append(f"  differs  {self.differs}")
        lines += [f"  kept     {k} (not in the source)" for k in self.kept]
        lines += [f"  edited   {e}" for e in self.edited]
        lines += [f"  adjusted {a}" for a in self.adjusted]
        for m in self.mapped:
            note = f" ({m.note})" if m.note else ""
            lines.append(f"  {m.target} <- {m.source} {tuple(m.shape)}{note}")
        return "\n".join(lines)


_STATS = ("running_mean", "running_var")


def _kind(key: str) -> str:
    """What a key's name says it is: "weight", "bias", a running statistic, or "other" (gamma, scale, ...)."""
    parts = key.split(".")
    last = parts[-2] if parts[-1].isdigit() and len(parts) > 1 else parts[-1]
    if last in _STATS:
        return last
    if last.endswith("bias"):
        return "bias"
    return "weight" if "weight" in last else "other"


def _tensors(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The state without BN's ``num_batches_tracked`` counters (they change no output)."""
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


def map_state(model: nn.Module, state: Mapping[str, Tensor], pair: Pair, *, name: str | None = None) -> InteropReport:
    """Load ``state`` (the source model's ``state_dict()``) into ``model`` as ``pair`` says; return the report.

    The model's own dtype and device are kept. Raises ``ValueError`` when the tensors do not pair up.
    """
    report = InteropReport(model=name or pair.model, source=pair.spec, differs=pair.differs)
    source = {k: v.detach() for k, v in _tensors(state).items()}
    for edit in pair.edits:
        report.edited += edit(source)
    keys = list(source)
    for regroup in pair.regroup:
        keys = regroup.apply(keys)
    own = model.state_dict()
    targets = list(_tensors(own))
    if pair.keep:
        keep = re.compile("|".join(f"(?:{k})" for k in pair.keep))
        report.kept = [t for t in targets if keep.match(t)]
        targets = [t for t in targets if not keep.match(t)]
    if len(keys) != len(targets):
        raise ValueError(
            f"{pair.spec} -> {report.model}: the source has {len(keys)} tensors, the model {len(targets)}; "
            "is this the matching architecture with the same number of classes?"
        )
    loaded: dict[str, Tensor] = dict(own)
    for target, key in zip(targets, keys, strict=True):
        value, want = source[key], own[target]
        note = ""
        if tuple(value.shape) != tuple(want.shape):
            squeezed = [s for s in value.shape if s != 1]
            if squeezed != [s for s in want.shape if s != 1]:
                raise ValueError(
                    f"{pair.spec} -> {report.model}: {key} {tuple(value.shape)} does not fit {target} "
                    f"{tuple(want.shape)}"
                )
            note = f"reshaped from {tuple(value.shape)}"
            value = value.reshape(want.shape)
        kinds = {_kind(key), _kind(target)}
        if len(kinds) > 1 and "other" not in kinds:
            what = f"{key} ({_kind(key)}) paired with {target} ({_kind(target)})"
            raise ValueError(f"{pair.spec} -> {report.model}: {what}")
        loaded[target] = value.to(dtype=want.dtype, device=want.device)
        report.mapped.append(MappedTensor(target, key, tuple(want.shape), note))
    model.load_state_dict(loaded, strict=True)
    for adjust in pair.adjust:
        report.adjusted += adjust(model)
    return report


def set_norm_eps(kind: type[nn.Module], eps: float, where: str = "") -> ModelEdit:
    """A model edit setting ``eps`` of every ``kind`` module whose name starts with ``where``."""

    def adjust(model: nn.Module) -> list[str]:
        changed = []
        for name, module in model.named_modules():
            if isinstance(module, kind) and name.startswith(where) and module.eps != eps:
                changed.append(f"{name}.eps {module.eps:g} -> {eps:g}")
                module.eps = eps
        return changed

    return adjust
