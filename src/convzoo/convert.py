"""``convert``: swap the convolutions of any ``nn.Module`` for a registered operator, with a full report.

>>> from torch import nn
>>> model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2, padding=1))
>>> report = convert(model, "shift")
>>> [r.name for r in report.replaced], [s.name for s in report.skipped]
(['2'], ['0'])
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from convzoo.core.conv import same_padding
from convzoo.core.names import close_matches
from convzoo.ops.base import Op, check_options, create_op
from convzoo.registry import OPS

__all__ = ["convert", "ConvertReport", "Replaced", "Skipped"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONV_FORWARDS = {nn.Conv1d.forward, nn.Conv2d.forward, nn.Conv3d.forward}
# convolutions of other packages that pad per input as TensorFlow's "SAME" does (timm's create_conv2d makes one
# where the padding cannot be static) and otherwise compute nn.Conv2d's forward: with an odd kernel this is
# ceil(S / stride) outputs, as the symmetric "same" padding of the replacement gives (the grid may sit half a
# stride apart at stride > 1, which a freshly initialised replacement does not notice)
_TF_SAME = ("Conv2dSame",)

Where = str | Iterable[str] | Callable[[str, nn.Module], bool] | None
_SHOWN = 5  # layer names a "matches nothing" error lists


@dataclass(frozen=True)
class Replaced:
    name: str
    before: str
    after: str


@dataclass(frozen=True)
class Skipped:
    name: str
    layer: str
    reason: str


@dataclass
class ConvertReport:
    """What :func:`convert` replaced and what it left in place, with the reason for each."""

    target: str
    replaced: list[Replaced] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"convert to {self.target!r}: {len(self.replaced)} replaced, {len(self.skipped)} kept"]
        lines += [f"  replaced {r.name}: {r.before} -> {r.after}" for r in self.replaced]
        lines += [f"  kept     {s.name}: {s.layer} ({s.reason})" for s in self.skipped]
        return "\n".join(lines)


def _describe(module: nn.Module) -> str:
    if isinstance(module, _CONVS) or _conv_like(module):
        return (
            f"{type(module).__name__}({module.in_channels}, {module.out_channels}, k={module.kernel_size}, "
            f"s={getattr(module, 'stride', '?')})"
        )
    return f"{type(module).registry_name}({module.in_channels}, {module.out_channels}, k={module.kernel_size}, " + (
        f"s={module.stride})"
    )


def _patterns(where: Where) -> list[str] | None:
    """The globs of ``where``, or ``None`` when it is no glob (everything, or a function)."""
    if where is None or callable(where):
        return None
    return [where] if isinstance(where, str) else list(where)


def _matcher(where: Where, patterns: list[str] | None) -> Callable[[str, nn.Module], bool]:
    if patterns is not None:
        return lambda name, module: any(fnmatch.fnmatchcase(name, p) for p in patterns)
    if where is None:
        return lambda name, module: True
    return where


def _no_match_message(model: nn.Module, patterns: list[str], layers: list[str]) -> str:
    """Why a glob ``where`` selected nothing, naming the layers it could have selected (close ones first)."""
    asked = repr(patterns[0]) if len(patterns) == 1 else repr(patterns)
    if not layers:
        return f"convert: where={asked} matches no layer: {type(model).__name__} has no convolution to replace"
    close = dict.fromkeys(name for p in patterns for name in close_matches(p, layers))
    shown = list(close) or layers[:_SHOWN]
    more = f" ({len(layers)} in all)" if len(layers) > len(shown) else ""
    return (
        f"convert: where={asked} matches no convolution of {type(model).__name__}; "
        f"its convolutions include {', '.join(map(repr, shown))}{more}"
    )


def _conv_like(module: nn.Module) -> bool:
    """A convolution that is neither an ``nn.Conv{1,2,3}d`` nor a convzoo operator (timm's ``CondConv2d``,
    torchvision's ``DeformConv2d``): it has channels, a kernel size and a weight, and is reported, not replaced."""
    return (
        not isinstance(module, (*_CONVS, Op))
        and all(hasattr(module, a) for a in ("in_channels", "out_channels", "kernel_size"))
        and isinstance(getattr(module, "weight", None), nn.Parameter)
    )


def _kernel_size(module: nn.Module) -> tuple[int, ...]:
    size = module.kernel_size
    return tuple(size) if isinstance(size, (tuple, list)) else (size,)


def _own_forward_reason(module: nn.Module) -> str | None:
    """Why a subclass of ``nn.Conv{1,2,3}d`` with its own ``forward`` is kept (``None``: it computes a plain
    convolution, or only pads as TensorFlow's "SAME" does)."""
    if type(module).forward in _CONV_FORWARDS or type(module).__name__ in _TF_SAME:
        return None
    return (
        f"{type(module).__name__} computes its own forward (e.g. weight standardisation), "
        "not nn.Conv's: a replacement would drop it"
    )


def _conv_arguments(module: nn.Module, accepted: list[str]) -> tuple[dict[str, Any], str | None]:
    """Contract arguments for the replacement of ``module``, or the reason it cannot be honoured."""
    if isinstance(module, Op):
        args = {
            "in_channels": module.in_channels,
            "out_channels": module.out_channels,
            "kernel_size": module.kernel_size,
            "stride": module.stride,
            "dim": module.dim,
            "bias": module.has_bias,
        }
        return args, None
    dim = len(_kernel_size(module))
    args = {
        "in_channels": module.in_channels,
        "out_channels": module.out_channels,
        "kernel_size": _kernel_size(module),
        "stride": tuple(getattr(module, "stride", (1,) * dim)),
        "dim": dim,
        "bias": getattr(module, "bias", None) is not None,
    }
    if _conv_like(module):
        return args, (
            f"{type(module).__name__} is not an nn.Conv{dim}d (its kernel is computed or sampled per input); "
            "convert replaces plain convolutions and convzoo operators"
        )
    reason = _own_forward_reason(module)
    if reason is not None:
        return args, reason
    if module.padding_mode != "zeros":
        return args, f"padding_mode={module.padding_mode!r}, the operators pad with zeros"
    if any(k % 2 == 0 for k in module.kernel_size):
        return args, f"even kernel_size {tuple(module.kernel_size)} has no symmetric 'same' padding"
    same = same_padding(module.kernel_size, module.dilation)
    tf_same = type(module).__name__ in _TF_SAME and all(p == 0 for p in module.padding)
    if module.padding != same and not tf_same and not (module.padding == "same" and all(s == 1 for s in module.stride)):
        return args, f"padding {module.padding} is not 'same' {same}: the output size would change"
    if any(d != 1 for d in module.dilation):
        if "dilation" not in accepted:
            return args, f"dilation {tuple(module.dilation)} (the target takes no dilation)"
        args["dilation"] = tuple(module.dilation)
    if module.groups != 1:
        if "groups" not in accepted:
            return args, f"groups={module.groups} (the target takes no groups)"
        args["groups"] = module.groups
    return args, None


def convert(
    model: nn.Module,
    to: str,
    where: Where = None,
    *,
    include_pointwise: bool = False,
    **options: Any,
) -> ConvertReport:
    """Replace, in place, every ``nn.Conv{1,2,3}d`` or convzoo operator of ``model`` matched by ``where`` with ``to``.

    Each replacement keeps the channels, kernel size, stride, dims, bias, device and dtype of the
    layer it replaces and is built with ``create_op(to, ..., **options)``; its weights are freshly
    initialised. ``where`` selects layers by qualified name: a glob (``"layer1.*"``), a list of
    globs, or ``f(name, module) -> bool``; globs that match no convolution raise ``ValueError``
    naming the convolutions there are (a misspelt pattern is not an empty report). 1×1 convs mix
    channels, not space, so they are kept unless ``include_pointwise=True``. A layer the target
    cannot honour (dilation, groups, padding that is not "same", an option the target rejects) is
    kept and listed in ``report.skipped`` with the reason; nothing is skipped silently.

    Models of other packages convert as they are: subclasses of ``nn.Conv{1,2,3}d`` that compute the plain
    convolution are replaced like it; timm's ``Conv2dSame`` (TensorFlow "SAME" padding per input, made by
    ``create_conv2d`` where a static padding cannot be) is replaced as a "same"-padded conv with an odd kernel
    (same output size at any stride); a subclass with a forward of its own (timm's ``StdConv2d``: weight
    standardisation) and convolution-like modules that are no ``nn.Conv`` (timm's ``CondConv2d``, torchvision's
    ``DeformConv2d``) are kept, each with its reason. timm's ``MixedConv2d`` holds plain convs, one per kernel
    size, and each is replaced on its own.
    """
    entry = OPS.get(to)
    accepted = check_options(to, options)
    patterns = _patterns(where)
    match = _matcher(where, patterns)
    report = ConvertReport(target=to)
    layers = [
        (name, module)
        for name, module in model.named_modules()
        if name and (isinstance(module, (*_CONVS, Op)) or _conv_like(module))
    ]
    candidates = [(name, module) for name, module in layers if match(name, module)]
    if patterns is not None and not candidates:  # a glob that selects nothing is a mistake, not an empty report
        raise ValueError(_no_match_message(model, patterns, [name for name, _ in layers]))
    # an op nested inside a replaced op goes with its parent
    replaced_prefixes: list[str] = []
    for name, module in candidates:
        if any(name.startswith(p + ".") for p in replaced_prefixes):
            continue
        layer = _describe(module)
        if not include_pointwise and all(k == 1 for k in _kernel_size(module)):
            report.skipped.append(Skipped(name, layer, "1x1 pointwise conv (pass include_pointwise=True)"))
            continue
        args, reason = _conv_arguments(module, accepted)
        if reason is None and args["dim"] not in entry.dims:
            reason = f"{args['dim']}-d layer, {to!r} supports dims {entry.dims}"
        if reason is None:
            try:
                new = create_op(to, **args, **options)
            except (ValueError, TypeError) as error:
                reason = str(error)
        if reason is not None:
            report.skipped.append(Skipped(name, layer, reason))
            continue
        reference = next(module.parameters(), None)
        if reference is not None:
            new = new.to(device=reference.device, dtype=reference.dtype)
        new.train(module.training)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, new)
        replaced_prefixes.append(name)
        report.replaced.append(Replaced(name, layer, _describe(new)))
    return report
