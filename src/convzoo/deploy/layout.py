"""The deploy form a user would ship: re-parameterised, BatchNorms folded, in the memory layout measured fastest.

:func:`deploy_form` applies :func:`~convzoo.deploy.reparam.reparameterize` (training-form branches become one conv)
and :func:`~convzoo.deploy.fuse_bn.fuse_bn` (each BN folds into the conv before it), checks the result against
the model as given on the example, then times the deploy form in every memory layout the input's rank allows
(``nchw`` and ``channels_last`` for 4-D inputs, ``ncdhw`` and ``channels_last_3d`` for 5-D, the contiguous one
only for other ranks), interleaved with the model as given (A B C A B C ..., median of ``repeats``), and keeps
the fastest layout. On x86 the choice matters: oneDNN's depthwise kernels are several times faster
channels-last, while a small dense conv may be faster in NCHW.

The layout is one choice for the whole model: the weights and the input are put in it, the model is left as
eager PyTorch. :func:`convzoo.deploy.optimize` goes further (per-layer forms, traced graphs); this is the form
``convzoo study`` times, so every operator is measured as it deploys and no operator pays for a layout or a
training-form branch it would not ship with.

>>> import torch
>>> from convzoo.models import create_model
>>> model = create_model("mixer_resnet20", num_classes=10, in_chans=1, op="dilated_reparam", kernel_size=5)
>>> deployed, report = deploy_form(model, torch.randn(1, 1, 8, 8), repeats=3)  # doctest: +SKIP
>>> report.layout, report.speedup  # doctest: +SKIP
('channels_last', 2.1)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convzoo.core.validate import check_int
from convzoo.deploy.fuse_bn import _BATCH_NORMS, fuse_bn
from convzoo.deploy.reparam import ReparamReport, reparameterize_with_report
from convzoo.profile.counting import eval_no_grad
from convzoo.profile.timing import Timing, interleaved, use_threads

__all__ = [
    "DeployFormReport",
    "InLayout",
    "LAYOUTS",
    "RTOL",
    "deploy_form",
    "fastest_layout",
    "layouts_for",
    "to_memory_format",
]

RTOL = 1e-4  # a deploy form must match the model as given to max |a - b| <= RTOL * max |a|

# input rank -> the layouts a model with that input can run in, the default first
LAYOUTS: dict[int, tuple[tuple[str, torch.memory_format], ...]] = {
    4: (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)),
    5: (("ncdhw", torch.contiguous_format), ("channels_last_3d", torch.channels_last_3d)),
}


def layouts_for(example: Tensor) -> tuple[tuple[str, torch.memory_format], ...]:
    """The (name, memory format) pairs a model fed ``example`` can run in; the contiguous one first."""
    return LAYOUTS.get(example.dim(), (("contiguous", torch.contiguous_format),))


def to_memory_format(module: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """``module`` with every parameter and buffer of the format's rank (4-d for channels_last, 5-d for
    channels_last_3d) stored in ``memory_format``, in place; other tensors stay as they are (``nn.Module.to``
    refuses a module holding, say, 5-d expert kernels when asked for channels_last)."""
    rank = 4 if memory_format is torch.channels_last else 5
    for tensor in [*module.parameters(), *module.buffers()]:
        if tensor.dim() == rank:
            tensor.data = tensor.data.contiguous(memory_format=memory_format)
    return module


class InLayout(nn.Module):
    """``model`` with its weights and its input in ``memory_format``; the output is as the model returns it.

    The input conversion is part of the forward, so a caller handing in ordinary NCHW tensors pays for it, as it
    would in deployment.
    """

    def __init__(self, model: nn.Module, memory_format: torch.memory_format, layout: str) -> None:
        super().__init__()
        self.model = to_memory_format(model, memory_format)
        self.memory_format = memory_format
        self.layout = layout

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.contiguous(memory_format=self.memory_format))

    def extra_repr(self) -> str:
        return f"layout={self.layout}"


@dataclass(frozen=True)
class DeployFormReport:
    """What :func:`deploy_form` did and measured.

    ``timings`` holds the deploy form in each layout tried, ``trained`` the model as given (eager, its own
    layout); all were timed interleaved in one run, so their ratios compare.
    """

    layout: str
    timings: dict[str, Timing]
    trained: Timing
    reparam: ReparamReport
    batch_norms_folded: int
    max_abs_diff: float

    @property
    def latency(self) -> Timing:
        """The deploy form's timing in the chosen layout."""
        return self.timings[self.layout]

    @property
    def latency_ms(self) -> float:
        return self.latency.median_ms

    @property
    def speedup(self) -> float:
        """Latency of the model as given / latency of its deploy form."""
        return self.trained.median_ms / self.latency_ms if self.latency_ms > 0 else float("inf")

    def to_dict(self) -> dict:
        return {
            "layout": self.layout,
            "latency_ms": {name: t.median_ms for name, t in self.timings.items()},
            "trained_latency_ms": self.trained.median_ms,
            "speedup": self.speedup,
            "repeats": self.trained.repeats,
            "threads": self.trained.threads,
            "reparam_blocks": list(self.reparam.blocks),
            "reparam_merged": dict(self.reparam.merged),
            "reparam_kept": dict(self.reparam.kept),
            "batch_norms_folded": self.batch_norms_folded,
            "max_abs_diff": self.max_abs_diff,
        }


def _batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, _BATCH_NORMS) for m in model.modules())


def _first_tensor(output: object) -> Tensor:
    while isinstance(output, (tuple, list)):
        output = output[0]
    if not isinstance(output, Tensor):
        raise TypeError(f"deploy_form: the model must return a tensor (or a tuple led by one), got {type(output)}")
    return output


def _difference(reference: Tensor, candidate: Tensor, layout: str) -> float:
    difference = (reference - candidate).abs().max().item() if reference.numel() else 0.0
    scale = reference.abs().max().item() if reference.numel() else 0.0
    if not difference <= RTOL * scale:  # also catches NaN
        raise ValueError(
            f"deploy_form: the deploy form ({layout}) differs from the model by max |diff| {difference:.3g}, "
            f"more than {RTOL:g} × max |output| {scale:.3g}"
        )
    return difference


def _in_each_layout(model: nn.Module, example: Tensor) -> dict[str, nn.Module]:
    """``model`` per layout of :func:`layouts_for`: itself for the contiguous one, an :class:`InLayout` copy else."""
    return {
        name: model if fmt == torch.contiguous_format else InLayout(copy.deepcopy(model), fmt, name)
        for name, fmt in layouts_for(example)
    }


def deploy_form(
    model: nn.Module, example: Tensor, *, repeats: int = 50, warmup: int = 5, threads: int | None = None
) -> tuple[nn.Module, DeployFormReport]:
    """The deploy form of ``model`` (eval mode) in its fastest memory layout, and what was measured.

    ``model`` is left as it is (copied; its train/eval flags are restored). ``example`` is one input, for
    instance ``(1, C, H, W)`` for batch-1 latency. The deploy form is ``reparameterize`` then ``fuse_bn``, put in
    each layout of :func:`layouts_for`; each candidate must match the model's output to :data:`RTOL` relative
    (``ValueError`` otherwise). All candidates and the model as given are timed interleaved, ``warmup`` untimed
    rounds then ``repeats`` timed ones, with ``threads`` intra-op threads (``None``: torch's current count); the
    candidate with the lowest median wins. The returned module takes inputs in the ordinary (contiguous) layout;
    a channels-last one is an :class:`InLayout` around the deploy form.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"deploy_form: model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(example, Tensor):
        raise TypeError(f"deploy_form: example must be a tensor, got {type(example).__name__}")
    check_int(repeats, "repeats", "deploy_form")
    check_int(warmup, "warmup", "deploy_form", low=0)
    with eval_no_grad(model):
        reference = _first_tensor(model(example))
        deployed, reparam = reparameterize_with_report(model)
    before = _batch_norms(deployed)
    deployed = fuse_bn(deployed, example, inplace=True)
    folded = before - _batch_norms(deployed)
    candidates = _in_each_layout(deployed, example)
    with torch.no_grad():
        max_abs_diff = max(_difference(reference, _first_tensor(c(example)), n) for n, c in candidates.items())
    with use_threads(threads), eval_no_grad(model), torch.no_grad():
        runners = [lambda m=m: m(example) for m in (model, *candidates.values())]
        trained, *timings = interleaved(runners, repeats=repeats, warmup=warmup)
    by_layout = dict(zip(candidates, timings, strict=True))
    layout = min(by_layout, key=lambda name: by_layout[name].median_ms)
    report = DeployFormReport(layout, by_layout, trained, reparam, folded, max_abs_diff)
    return candidates[layout].eval(), report


def fastest_layout(model: nn.Module, example: Tensor, *, repeats: int = 20) -> tuple[nn.Module, str, dict[str, float]]:
    """``model`` (eval, inference) in the memory layout measured fastest on ``example``: ``(module, layout, ms)``.

    Every layout of :func:`layouts_for` is timed interleaved (median of ``repeats``); ``ms`` maps each to its
    median. The model itself serves the contiguous layout; another is an :class:`InLayout` around a copy.
    """
    check_int(repeats, "repeats", "fastest_layout")
    candidates = _in_each_layout(model, example)
    with torch.no_grad():
        timings = interleaved([lambda m=m: m(example) for m in candidates.values()], repeats=repeats, warmup=3)
    ms = {name: t.median_ms for name, t in zip(candidates, timings, strict=True)}
    layout = min(ms, key=ms.get)
    return candidates[layout], layout, ms
