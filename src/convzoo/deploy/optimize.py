"""Per-layer choice of the fastest equivalent form, measured on this machine.

Layer forms: the layer as trained, the dense kernel of a linear convzoo op (``dense_kernel().to_module()``), for
kernels of 15 or more an FFT convolution, and for ``nn.Linear`` a 1×1 oneDNN convolution over its rows.
Whole-model forms: eager, channels_last, a traced, frozen TorchScript graph (``torch.jit.freeze`` +
``optimize_for_inference``, which fuses conv + bias + ReLU) with and without channels_last, the frozen graph run by
the oneDNN Graph fuser (fused kernels in blocked layouts), and on request (``compile=True``) the model compiled by
``torch.compile`` (inductor, freezing). Every form is checked against the original output to 1e-4 relative
(max |a − b| ≤ 1e-4 · max |a|) before it may win.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convzoo.deploy.fuse_bn import _CONVS, set_submodule
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


class _ChannelsLast(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


@dataclass
class OptimizePlan:
    """Per-layer times of each form (ms), the chosen forms, and the end-to-end choice."""

    layers: dict[str, dict[str, float]] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)
    whole: dict[str, float] = field(default_factory=dict)
    whole_chosen: str = "eager"
    original_ms: float = 0.0
    rejected: dict[str, str] = field(default_factory=dict)  # "layer: form" or whole-model form → why it was not timed

    @property
    def ratio(self) -> float:
        """Original time / optimised time, end to end."""
        return self.original_ms / self.whole[self.whole_chosen]

    def markdown(self) -> str:
        lines = ["| layer | chosen | forms (ms) |", "|---|---|---|"]
        for name, forms in self.layers.items():
            times = ", ".join(f"{form} {ms:.3f}" for form, ms in forms.items())
            lines.append(f"| {name} | {self.chosen[name]} | {times} |")
        lines += ["", "| whole model | ms |", "|---|---|"]
        lines += [
            f"| {form}{' (chosen)' if form == self.whole_chosen else ''} | {ms:.3f} |"
            for form, ms in self.whole.items()
        ]
        lines.append(
            f"\nend to end: {self.original_ms:.3f} ms → {self.whole[self.whole_chosen]:.3f} ms ({self.ratio:.2f}×)"
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


@torch.no_grad()
def optimize_with_report(
    model: nn.Module, example_input: Tensor, *, repeats: int = 10, whole_forms: bool = True, compile: bool = False
) -> tuple[nn.Module, OptimizePlan]:
    """:func:`optimize`, also returning the :class:`OptimizePlan` (what was measured and chosen)."""
    original = copy.deepcopy(model).eval()
    model = copy.deepcopy(original)
    plan = OptimizePlan()
    reference = original(example_input)
    inputs: dict[str, Tensor] = {}
    layers = _candidates(model)
    handles = [
        module.register_forward_pre_hook(lambda m, args, name=name: inputs.setdefault(name, args[0]))
        for name, module in layers
    ]
    model(example_input)
    for handle in handles:
        handle.remove()
    for name, module in layers:
        if name not in inputs:
            continue
        x = inputs[name]
        expected = module(x)
        forms = {}
        for form, candidate in _layer_forms(module).items():
            if form == "as trained" or _close(expected, candidate(x)):
                forms[form] = candidate
            else:
                plan.rejected[f"{name}: {form}"] = "differs from the layer by more than 1e-4 relative"
        timings = interleaved([lambda m=m, x=x: m(x) for m in forms.values()], repeats=repeats, warmup=2)
        plan.layers[name] = {form: t.median_ms for form, t in zip(forms, timings, strict=True)}
        plan.chosen[name] = min(plan.layers[name], key=plan.layers[name].get)
        if plan.chosen[name] != "as trained":
            set_submodule(model, name, forms[plan.chosen[name]])
    wholes: dict[str, nn.Module] = {"eager": model}
    if whole_forms:
        if example_input.dim() == 4:
            wholes["channels_last"] = _ChannelsLast(copy.deepcopy(model))
        builds = [(f"{form} + frozen graph", wholes[form], False) for form in wholes]
        builds.append(("frozen graph + oneDNN fusion", model, True))
        for form, base, fusion in builds:
            try:
                wholes[form] = FrozenGraph(base, example_input, onednn_fusion=fusion)
            except Exception as error:  # noqa: BLE001  (a model TorchScript cannot trace keeps its eager forms)
                plan.rejected[form] = f"could not be built: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
        if compile:
            try:
                wholes["torch.compile (inductor, freezing)"] = CompiledGraph(copy.deepcopy(model), example_input)
            except Exception as error:  # noqa: BLE001  (no C++ compiler, an op inductor cannot lower)
                plan.rejected["torch.compile (inductor, freezing)"] = (
                    f"could not be built: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
                )
    for form in [f for f, m in wholes.items() if not _close(reference, m(example_input))]:
        plan.rejected[form] = "differs from the model by more than 1e-4 relative"
        del wholes[form]
    runners = [original, *wholes.values()]
    timings = interleaved([lambda m=m: m(example_input) for m in runners], repeats=repeats, warmup=2)
    plan.original_ms = timings[0].median_ms
    plan.whole = {form: t.median_ms for form, t in zip(wholes, timings[1:], strict=True)}
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
    1×1 oneDNN conv) is timed on the input it sees; then the whole model is timed eager, channels_last, and as a
    frozen TorchScript graph, and with
    ``compile=True`` also as a :class:`CompiledGraph` (``torch.compile``, inductor with freezing: often the
    fastest, at the price of a compile per input shape and of a form that saves only as its eager model). Forms
    that differ from the original by more than 1e-4 relative are discarded. See :func:`optimize_with_report`.
    """
    return optimize_with_report(model, example_input, repeats=repeats, compile=compile)[0]
