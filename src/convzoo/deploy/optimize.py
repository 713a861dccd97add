"""Per-layer choice of the fastest equivalent form, measured on this machine.

Layer forms: the layer as trained, the dense kernel of a linear convzoo op (``dense_kernel().to_module()``), for
kernels of 15 or more an FFT convolution, and for ``nn.Linear`` a 1×1 oneDNN convolution over its rows.
Every layer is timed on the input it sees in both memory layouts (contiguous and, for 4-d/5-d inputs,
channels-last: on Intel CPUs NCHW depthwise convolution is several times slower than channels-last), so each
layout gets its own per-layer choice. Whole-model forms: the model as given, eager, channels_last, a traced, frozen
TorchScript graph (``torch.jit.freeze`` +
``optimize_for_inference``, which fuses conv + bias + ReLU) with and without channels_last, the frozen graph run by
the oneDNN Graph fuser (fused kernels in blocked layouts; only on request, ``onednn_fusion=True``, since it can crash
the process), and on request (``compile=True``) the model compiled by
``torch.compile`` (inductor, freezing). Every form is checked against the original output to 1e-4 relative
(max |a − b| ≤ 1e-4 · max |a|) before it may win.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.deploy.fuse_bn import _CONVS, set_submodule
from convzoo.deploy.layout import InLayout, layouts_for, to_memory_format
from convzoo.ops.base import Op
from convzoo.profile.timing import interleaved
from convzoo.registry import OPS, TRANSFORMS

__all__ = [
    "CompiledGraph",
    "FFTConv",
    "LinearAsConv",
    "FrozenGraph",
    "OptimizePlan",
    "fft_conv",
    "optimize",
    "optimize_with_report",
]

FFT_MIN_KERNEL = 15
RTOL = 1e-4


def fft_conv(x: Tensor, weight: Tensor, bias: Tensor | None, padding: tuple[int, ...], groups: int = 1) -> Tensor:
    """``F.conv{d}d(x, weight, bias, padding=padding, groups=groups)`` (stride 1, dilation 1) through the FFT.

    ``x`` is ``(N, C_in, *S)``, ``weight`` ``(C_out, C_in / groups, *k)``; output ``(N, C_out, *(S + 2p − k + 1))``.
    Cross-correlation is ``irfft(rfft(x) · conj(rfft(w)))`` on the padded length, where no tap wraps around.
    """
    dim = weight.dim() - 2
    kernel = weight.shape[2:]
    x = F.pad(x, [p for pad in reversed(padding) for p in (pad, pad)])  # (N, C_in, *L)
    length = x.shape[2:]
    axes = tuple(range(-dim, 0))
    x_hat = torch.fft.rfftn(x, s=length, dim=axes)  # (N, C_in, *F)
    w_hat = torch.fft.rfftn(weight, s=length, dim=axes).conj()  # (C_out, C_in / g, *F)
    n, c_in = x.shape[:2]
    c_out = weight.shape[0]
    x_hat = x_hat.view(n, groups, 1, c_in // groups, *x_hat.shape[2:])  # (N, g, 1, C_in / g, *F)
    w_hat = w_hat.view(1, groups, c_out // groups, c_in // groups, *w_hat.shape[2:])  # (1, g, C_out / g, C_in / g, *F)
    y_hat = (x_hat * w_hat).sum(3).view(n, c_out, *x_hat.shape[4:])  # (N, C_out, *F)
    y = torch.fft.irfftn(y_hat, s=length, dim=axes)  # (N, C_out, *L)
    y = y[(..., *(slice(0, size - k + 1) for size, k in zip(length, kernel, strict=True)))]  # (N, C_out, *S')
    if bias is not None:
        y = y + bias.view(-1, *([1] * dim))
    return y.contiguous()


class LinearAsConv(nn.Module):
    """An ``nn.Linear`` computed as a 1×1 ``conv2d`` (oneDNN) over its rows, with no copy of the input.

    The ``(M, C)`` rows of the input are, in memory, a channels-last ``(1, C, M, 1)`` image, so the product runs in
    oneDNN's convolution kernels instead of the BLAS ``addmm``: on CPUs where the BLAS is slow (MKL on AMD runs
    at about half of oneDNN's rate here) this is up to twice as fast; ``optimize`` times both on each layer.
    """

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias

    def forward(self, x: Tensor) -> Tensor:
        out_features, in_features = self.weight.shape
        rows = x.reshape(-1, in_features)  # (M, C)
        image = rows.view(1, rows.shape[0], 1, in_features).permute(0, 3, 1, 2)  # (1, C, M, 1), channels-last
        y = F.conv2d(image, self.weight.view(out_features, in_features, 1, 1), self.bias)  # (1, O, M, 1)
        return y.permute(0, 2, 3, 1).reshape(*x.shape[:-1], out_features)  # (..., O)


class FFTConv(nn.Module):
    """An ``nn.Conv{d}d`` (dilation 1, zero padding) computed with :func:`fft_conv`; strides subsample."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.weight, self.bias = conv.weight, conv.bias
        self.padding, self.stride, self.groups = tuple(conv.padding), tuple(conv.stride), conv.groups

    def forward(self, x: Tensor) -> Tensor:
        y = fft_conv(x, self.weight, self.bias, self.padding, self.groups)
        if any(s > 1 for s in self.stride):
            y = y[(..., *(slice(None, None, s) for s in self.stride))]
        return y


@dataclass
class OptimizePlan:
    """Per-layer times of each form (ms) in each memory layout, the chosen forms, and the end-to-end choice.

    ``layers``/``chosen`` are the per-layer measurements in the default (contiguous) layout, ``layers_cl`` /
    ``chosen_cl`` the same layers measured on channels-last inputs (4-d and 5-d models). ``whole`` times every
    whole-model form, the model as given (``"as trained"``) included, so the chosen form is never one measured
    slower than it; ``layout`` is the memory layout the chosen form runs in.
    """

    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)
    layers_cl: dict[str, dict[str, float]] = field(default_factory=dict)
    chosen_cl: dict[str, str] = field(default_factory=dict)
    whole: dict[str, float] = field(default_factory=dict)
    whole_chosen: str = "eager"
    original_ms: float = 0.0
    threads: int = 1
    rejected: dict[str, str] = field(default_factory=dict)  # "layer: form" or whole-model form → why it was not timed

    @property
    def ratio(self) -> float:
        """Original time / optimised time, end to end."""
        return self.original_ms / self.whole[self.whole_chosen]

    @property
    def layout(self) -> str:
        """``"channels_last"`` or ``"contiguous"``: the memory layout the chosen form runs in."""
        return "channels_last" if self.whole_chosen.startswith("channels_last") else "contiguous"

    def markdown(self) -> str:
        lines = ["| layer | layout | chosen | forms (ms) |", "|---|---|---|---|"]
        for layout, layers, chosen in (
            ("contiguous", self.layers, self.chosen),
            ("channels_last", self.layers_cl, self.chosen_cl),
        ):
            for name, forms in layers.items():
                times = ", ".join(f"{form} {ms:.3f}" for form, ms in forms.items())
                lines.append(f"| {name} | {layout} | {chosen[name]} | {times} |")
        lines += ["", "| whole model | ms |", "|---|---|"]
        lines += [
            f"| {form}{' (chosen)' if form == self.whole_chosen else ''} | {ms:.3f} |"
            for form, ms in self.whole.items()
        ]
        lines.append(
            f"\nend to end ({self.threads} thread{'s' if self.threads != 1 else ''}): {self.original_ms:.3f} ms → "
            f"{self.whole[self.whole_chosen]:.3f} ms ({self.ratio:.2f}×), {self.whole_chosen}, {self.layout} memory"
        )
        if self.rejected:
            lines += ["", "| not used | why |", "|---|---|"]
            lines += [f"| {form} | {why} |" for form, why in self.rejected.items()]
        return "\n".join(lines) + "\n"


def _close(reference: Tensor, candidate: Tensor) -> bool:
    if candidate.shape != reference.shape:
        return False
    return (candidate - reference).abs().max().item() <= RTOL * max(reference.abs().max().item(), 1e-12)


def _layer_forms(module: nn.Module) -> dict[str, nn.Module]:
    forms = {"as trained": module}
    if isinstance(module, Op) and OPS.get(type(module).registry_name).linear:
        try:
            module = forms["dense"] = module.dense_kernel().to_module()
        except (NotImplementedError, ValueError):
            return forms
    if type(module) is nn.Linear:
        forms["1×1 conv (oneDNN)"] = LinearAsConv(module)
    conv = module if isinstance(module, _CONVS) else None
    if (
        conv is not None
        and not isinstance(conv.padding, str)
        and conv.padding_mode == "zeros"
        and all(d == 1 for d in conv.dilation)
        and max(conv.kernel_size) >= FFT_MIN_KERNEL
    ):
        forms["fft"] = FFTConv(conv)
    return forms


def _candidates(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The outermost layers that have more than one form."""
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if any(name.startswith(f"{outer}.") for outer, _ in found):
            continue
        if len(_layer_forms(module)) > 1:
            found.append((name, module))
    return found


class FrozenGraph(nn.Module):
    """A traced, frozen TorchScript graph of a model, as an ordinary module.

    ``onednn_fusion=False``: ``torch.jit.optimize_for_inference`` folds and fuses conv + bias + ReLU.
    ``onednn_fusion=True``: the oneDNN Graph fuser (LLGA) partitions the graph into fused oneDNN kernels that keep
    their blocked layouts between layers; its switch is process-wide, so it is turned on for each call and restored.
    The weights are constants of the graph. A frozen script module lacks the attributes ``nn.Module`` code expects
    (``training``, submodules), so it is held as a plain attribute rather than as a submodule.
    """

    def __init__(self, model: nn.Module, example: Tensor, *, onednn_fusion: bool = False) -> None:
        super().__init__()
        self.onednn_fusion = onednn_fusion
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TorchScript's deprecation notice (torch 2.13)
            frozen = torch.jit.freeze(torch.jit.trace(model.eval(), example, check_trace=False))
            self.__dict__["graph"] = frozen if onednn_fusion else torch.jit.optimize_for_inference(frozen)
        for _ in range(2 if onednn_fusion else 0):  # the fuser rewrites the graph during its first profiled runs
            self(example)

    def forward(self, x: Tensor) -> Tensor:
        if not self.onednn_fusion:
            return self.graph(x)
        before = torch.jit.onednn_fusion_enabled()
        torch.jit.enable_onednn_fusion(True)
        try:
            with torch.no_grad():
                return self.graph(x)
        finally:
            torch.jit.enable_onednn_fusion(before)


class CompiledGraph(nn.Module):
    """A model run by ``torch.compile`` (inductor, ``freezing`` on: weights become constants, convs prepacked oneDNN
    kernels with fused post-ops, the ops between them generated C++), compiled for the example's shape.

    Inductor's ``freezing`` switch is process-wide, so it is set for each call and restored. Under a
    ``TorchDispatchMode`` (the flop counter of :mod:`convzoo.profile`) the eager model runs instead: dynamo cannot
    compile under such a mode and would otherwise fall back to eager for good. Needs a C++ compiler; the first call
    compiles (minutes for a large model on a few cores; inductor caches the result on disk).
    """

    def __init__(self, model: nn.Module, example: Tensor) -> None:
        super().__init__()
        self.model = model.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.__dict__["compiled"] = torch.compile(self.model, dynamic=False)
            self(example)  # compile now, not on the user's first call

    def forward(self, x: Tensor) -> Tensor:
        import torch._inductor.config as inductor_config
        from torch.utils._python_dispatch import _get_current_dispatch_mode

        if _get_current_dispatch_mode() is not None:  # see the class docstring
            return self.model(x)
        with torch.no_grad(), inductor_config.patch(freezing=True):
            return self.compiled(x)


def _choose_layer_forms(
    model: nn.Module,
    example: Tensor,
    repeats: int,
    plan: OptimizePlan,
    layers: dict[str, dict[str, float]],
    chosen: dict[str, str],
    memory_format: torch.memory_format | None = None,
) -> nn.Module:
    """Time each multi-form layer of ``model`` on the input it sees (in ``memory_format``), keep the fastest form.

    Forms are built from the layer as trained; with a memory format each is converted to it, so a dense kernel or an
    FFT form is timed as it would run in a channels-last model.
    """
    if memory_format is not None:
        model = to_memory_format(model, memory_format)
        example = example.contiguous(memory_format=memory_format)
    suffix = "" if memory_format is None else " (channels_last)"
    inputs: dict[str, Tensor] = {}
    candidates = _candidates(model)
    handles = [
        module.register_forward_pre_hook(lambda m, args, name=name: inputs.setdefault(name, args[0]))
        for name, module in candidates
    ]
    model(example)
    for handle in handles:
        handle.remove()
    for name, module in candidates:
        if name not in inputs:
            continue
        x = inputs[name]
        expected = module(x)
        forms = {}
        for form, candidate in _layer_forms(module).items():
            if memory_format is not None:
                candidate = to_memory_format(candidate, memory_format)
            if form == "as trained" or _close(expected, candidate(x)):
                forms[form] = candidate
            else:
                plan.rejected[f"{name}: {form}{suffix}"] = "differs from the layer by more than 1e-4 relative"
        timings = interleaved([lambda m=m, x=x: m(x) for m in forms.values()], repeats=repeats, warmup=2)
        layers[name] = {form: t.median_ms for form, t in zip(forms, timings, strict=True)}
        chosen[name] = min(layers[name], key=layers[name].get)
        if chosen[name] != "as trained":
            set_submodule(model, name, forms[chosen[name]])
    return model


def _try_build(plan: OptimizePlan, wholes: dict[str, nn.Module], form: str, build) -> None:
    try:
        wholes[form] = build()
    except Exception as error:  # noqa: BLE001  (a model TorchScript or inductor cannot take keeps its other forms)
        plan.rejected[form] = f"could not be built: {type(error).__name__}: {str(error).splitlines()[0][:120]}"


@torch.no_grad()
def optimize_with_report(
    model: nn.Module,
    example_input: Tensor,
    *,
    repeats: int = 10,
    whole_forms: bool = True,
    compile: bool = False,
    onednn_fusion: bool = False,
) -> tuple[nn.Module, OptimizePlan]:
    """:func:`optimize`, also returning the :class:`OptimizePlan` (what was measured and chosen).

    ``onednn_fusion=True`` adds the frozen graph run by TorchScript's oneDNN Graph fuser. It is off by default:
    on some models the fuser crashes the process (a segmentation fault, which no ``try`` can catch; seen on
    LSNet with torch 2.13, see docs/known-issues.md).
    """
    original = copy.deepcopy(model).eval()
    plan = OptimizePlan(threads=torch.get_num_threads())
    reference = original(example_input)
    eager = _choose_layer_forms(copy.deepcopy(original), example_input, repeats, plan, plan.layers, plan.chosen)
    wholes: dict[str, nn.Module] = {"as trained": original, "eager": eager}
    other_layouts = layouts_for(example_input)[1:]  # the channels-last layout of 4-d or 5-d inputs, if any
    if whole_forms and other_layouts:
        name, memory_format = other_layouts[0]
        per_layer_cl = _choose_layer_forms(
            copy.deepcopy(original), example_input, repeats, plan, plan.layers_cl, plan.chosen_cl, memory_format
        )
        wholes["channels_last"] = InLayout(per_layer_cl, memory_format, name)
    if whole_forms:
        for form in [f for f in wholes if f != "as trained"]:
            _try_build(plan, wholes, f"{form} + frozen graph", partial(FrozenGraph, wholes[form], example_input))
        if onednn_fusion:
            _try_build(
                plan,
                wholes,
                "frozen graph + oneDNN fusion",
                partial(FrozenGraph, eager, example_input, onednn_fusion=True),
            )
        if compile:
            _try_build(
                plan,
                wholes,
                "torch.compile (inductor, freezing)",
                partial(CompiledGraph, copy.deepcopy(eager), example_input),
            )
    for form in [f for f in wholes if f != "as trained"]:
        try:
            agrees = _close(reference, wholes[form](example_input))
        except Exception as error:  # noqa: BLE001  (a graph that built but fails on the input is not a form)
            plan.rejected[form] = f"failed to run: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
            del wholes[form]
            continue
        if not agrees:
            plan.rejected[form] = "differs from the model by more than 1e-4 relative"
            del wholes[form]
    timings = interleaved([lambda m=m: m(example_input) for m in wholes.values()], repeats=repeats, warmup=2)
    plan.whole = {form: t.median_ms for form, t in zip(wholes, timings, strict=True)}
    plan.original_ms = plan.whole["as trained"]
    plan.whole_chosen = min(plan.whole, key=plan.whole.get)
    return wholes[plan.whole_chosen], plan


@TRANSFORMS.register(
    "optimize",
    kind="transform",
    summary="per layer and end to end, measure the equivalent forms on this machine and keep the fastest",
)
def optimize(model: nn.Module, example_input: Tensor, *, repeats: int = 10, compile: bool = False) -> nn.Module:
    """The fastest equivalent of ``model`` for inputs shaped like ``example_input`` on this machine.

    Each layer with several forms (as trained, dense kernel of a linear op, FFT for kernels ≥ 15, a Linear as a
    1×1 oneDNN conv) is timed on the input it sees, in each memory layout; then the whole model is timed as given,
    eager, channels_last, and as a frozen TorchScript graph, and with
    ``compile=True`` also as a :class:`CompiledGraph` (``torch.compile``, inductor with freezing: often the
    fastest, at the price of a compile per input shape and of a form that saves only as its eager model). Forms
    that differ from the original by more than 1e-4 relative are discarded. The model as given is one of the
    timed forms, so the result is never one measured slower than it; the plan states the chosen layout
    (``plan.layout``). See :func:`optimize_with_report`.
    """
    return optimize_with_report(model, example_input, repeats=repeats, compile=compile)[0]
