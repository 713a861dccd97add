"""``profile(model, input)``: per-layer cost on this machine against its measured roofline (S54, conv-efficiency).

For every row (layer, or a container's own ops; see :mod:`convzoo.profile.counting`) the profile gives params,
MACs, FLOPs, bytes moved, arithmetic intensity, the measured latency (median and IQR over the forward passes),
the achieved GFLOP/s and GB/s, the roofline time ``max(FLOPs / peak, bytes / bandwidth)`` under the measured
peaks (:mod:`convzoo.profile.machine`) and the efficiency ``roofline / measured``.

Per-row latency comes from forward hooks in eval mode under ``no_grad``: a layer's time is its call, a
container's own ops are its time less its children's. The model's latency is measured on its own, without
hooks: the sum of the rows is not the model (hooks add their overhead, and a layer timed inside the model sees
the caches its neighbours left). The waterline is the sum of the roofline times, the least time this forward
could take layer by layer on this machine; the model efficiency is ``waterline / measured latency`` ≤ 1.

Memory layout: for a 4-d input (``layout=True``, the default) a copy of the model converted to the other layout
(channels-last for an NCHW input, NCHW for a channels-last one) runs with its input in that layout, interleaved with
the model as given, pass by pass, for the rows and for the whole model. Each row then says which layout was faster
and by how much, and a row where the other layout is at least :data:`LAYOUT_FLAG` times faster is flagged: its
layout costs it. This doubles the timed passes; ``layout=False`` (``convzoo profile --no-layout``) skips it.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from convzoo.core.validate import is_int
from convzoo.profile.counting import LayerCount, ModelCount, count_layers, eval_no_grad, walk_layers
from convzoo.profile.machine import MachinePeaks, fingerprint, machine_peaks
from convzoo.profile.timing import Load, LoadWatch, Timing, interleaved, summarize, use_threads

__all__ = ["LAYOUT_FLAG", "LayerCost", "Profile", "ROOT", "profile", "waterline"]

ROOT = "(root)"  # the row name of the profiled module itself
LAYOUT_FLAG = 1.2  # a row whose other memory layout is this many times faster is flagged
NCHW, CHANNELS_LAST = "NCHW", "channels_last"


@dataclass(frozen=True)
class LayerCost:
    """One row of a :class:`Profile`: counts per forward pass, measured time and roofline time in ms."""

    name: str
    type: str
    calls: int
    params: int
    macs: int
    bytes: int
    macs_source: str
    own_ops: bool
    median_ms: float
    iqr_ms: float
    roofline_ms: float
    bound: str
    layout: str | None = None  # the layout the row ran in as given (None: layouts not compared)
    other_layout_ms: float | None = None  # the row's median time in the other layout

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def other_layout(self) -> str | None:
        return None if self.layout is None else (NCHW if self.layout == CHANNELS_LAST else CHANNELS_LAST)

    @property
    def layout_speedup(self) -> float | None:
        """``time as given / time in the other layout``: above 1 the other layout is faster."""
        if self.other_layout_ms is None or self.other_layout_ms <= 0 or self.median_ms <= 0:
            return None
        return self.median_ms / self.other_layout_ms

    @property
    def faster_layout(self) -> str | None:
        speedup = self.layout_speedup
        return None if speedup is None else (self.other_layout if speedup > 1 else self.layout)

    @property
    def layout_flag(self) -> bool:
        """Whether the other layout is at least :data:`LAYOUT_FLAG` times faster on this row."""
        return self.layout_speedup is not None and self.layout_speedup >= LAYOUT_FLAG

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte moved (0 for a row that moves nothing)."""
        return self.flops / self.bytes if self.bytes else 0.0

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s."""
        return self.flops / (self.median_ms * 1e6) if self.median_ms > 0 else 0.0

    @property
    def gbps(self) -> float:
        """Achieved GB/s of the minimum traffic."""
        return self.bytes / (self.median_ms * 1e6) if self.median_ms > 0 else 0.0

    @property
    def efficiency(self) -> float:
        """``roofline_ms / median_ms``: 1 is the roof; a cache-resident layer can pass it."""
        return self.roofline_ms / self.median_ms if self.median_ms > 0 else 0.0

    @property
    def label(self) -> str:
        return f"{self.name} (own ops)" if self.own_ops else self.name

    def to_dict(self) -> dict[str, Any]:
        derived = ("flops", "intensity", "gflops", "gbps", "efficiency", "layout_speedup", "faster_layout")
        derived += ("layout_flag",)
        return {**asdict(self), **{k: getattr(self, k) for k in derived}}


@dataclass(frozen=True)
class Profile:
    """Per-row costs and model totals; ``latency`` is the whole model timed on its own.

    Rows come in the order their modules are first called (a container's own-ops row before its children).
    """

    model: str
    input_shapes: tuple[tuple[int, ...], ...]
    dtype: str
    threads: int
    layers: tuple[LayerCost, ...]
    params: int
    macs: int
    bytes: int
    latency: Timing
    peaks: MachinePeaks
    warmup: int = 0
    load_average: float | None = None
    layout: str | None = None  # the input's layout as given (None: layouts not compared)
    other_layout_latency: Timing | None = None
    layout_note: str = ""  # why layouts were not compared, where they were not
    fingerprint: dict[str, Any] | None = None
    load: Load | None = None

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def layout_speedup(self) -> float | None:
        """The model's ``latency as given / latency in the other layout`` (above 1: the other is faster)."""
        if self.other_layout_latency is None or self.other_layout_latency.median_ms <= 0:
            return None
        return self.latency_ms / self.other_layout_latency.median_ms

    @property
    def other_layout(self) -> str | None:
        return None if self.layout is None else (NCHW if self.layout == CHANNELS_LAST else CHANNELS_LAST)

    @property
    def layout_flag(self) -> float:
        """The speed-up of the other layout at which a row is flagged (:data:`LAYOUT_FLAG`)."""
        return LAYOUT_FLAG

    @property
    def latency_ms(self) -> float:
        return self.latency.median_ms

    @property
    def layers_ms(self) -> float:
        """Sum of the rows' median times (measured with hooks; not the model's latency)."""
        return sum(layer.median_ms for layer in self.layers)

    @property
    def waterline_ms(self) -> float:
        """Sum of the rows' roofline times: the model's floor on this machine, layer by layer."""
        return sum(layer.roofline_ms for layer in self.layers)

    @property
    def efficiency(self) -> float:
        """``waterline_ms / latency_ms``."""
        return self.waterline_ms / self.latency_ms if self.latency_ms > 0 else 0.0

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "input_shapes": [list(s) for s in self.input_shapes],
            "dtype": self.dtype,
            "threads": self.threads,
            "repeats": self.latency.repeats,
            "warmup": self.warmup,
            "load_average": self.load_average,
            "totals": {
                "params": self.params,
                "macs": self.macs,
                "flops": self.flops,
                "bytes": self.bytes,
                "intensity": self.intensity,
                "latency_ms": self.latency_ms,
                "latency_iqr_ms": self.latency.iqr_ms,
                "layers_ms": self.layers_ms,
                "waterline_ms": self.waterline_ms,
                "efficiency": self.efficiency,
                "layout": self.layout,
                "other_layout": self.other_layout,
                "other_layout_latency_ms": self.other_layout_latency.median_ms if self.other_layout_latency else None,
                "layout_speedup": self.layout_speedup,
            },
            "layout_note": self.layout_note,
            "fingerprint": self.fingerprint,
            "load": self.load.to_dict() if self.load is not None else None,
            "machine": self.peaks.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def table(self) -> str:
        from convzoo.profile.report import format_table

        return format_table(self)

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write the JSON, CSV, plots and HTML report into ``out_dir`` (atomically); returns the paths by kind."""
        from convzoo.profile.report import write_report

        return write_report(self, out_dir)


class _LayerTimer:
    """Forward hooks timing every row: a layer's call, and a container's time less its children's."""

    def __init__(self, model: nn.Module) -> None:
        self.keys: dict[int, tuple[str, bool]] = {}
        self.stack: list[list[Any]] = []  # [key, start, children's time]
        self.current: dict[tuple[str, bool], float] = defaultdict(float)
        self.handles = []
        for name, module, layer in walk_layers(model):
            self.keys[id(module)] = (name, not layer)
            self.handles.append(module.register_forward_pre_hook(self._enter))
            self.handles.append(module.register_forward_hook(self._leave))

    def _enter(self, module: nn.Module, args: tuple) -> None:
        self.stack.append([self.keys[id(module)], 0.0, 0.0])
        self.stack[-1][1] = time.perf_counter()  # last, so the hook's own work is not timed

    def _leave(self, module: nn.Module, args: tuple, output: Any) -> None:
        end = time.perf_counter()
        key, start, children = self.stack.pop()
        inclusive = end - start
        if self.stack:
            self.stack[-1][2] += inclusive
        own_ops = key[1]
        self.current[key] += (inclusive - children if own_ops else inclusive) * 1e3

    def take(self) -> dict[tuple[str, bool], float]:
        """The per-row milliseconds of the forward pass just run; resets for the next one."""
        taken, self.current = dict(self.current), defaultdict(float)
        return taken

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _time_rows(runs: list[tuple[nn.Module, tuple[Tensor, ...]]], repeats: int, warmup: int) -> list[dict]:
    """Per-row timings of each ``(model, inputs)``, their forward passes interleaved (A B A B ...)."""
    timers = [_LayerTimer(model) for model, _ in runs]
    samples: list[dict[tuple[str, bool], list[float]]] = [defaultdict(list) for _ in runs]
    try:
        for round_ in range(warmup + repeats):
            for (model, inputs), timer, record in zip(runs, timers, samples, strict=True):
                model(*inputs)
                taken = timer.take()
                if round_ >= warmup:
                    for key, ms in taken.items():
                        record[key].append(ms)
    finally:
        for timer in timers:
            timer.remove()
    return [{key: summarize(values) for key, values in record.items()} for record in samples]


def _layout_of(x: Tensor) -> str:
    return CHANNELS_LAST if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() else NCHW


def _other_layout(
    model: nn.Module, inputs: tuple[Tensor, ...]
) -> tuple[str | None, nn.Module | None, tuple[Tensor, ...], str]:
    """``(layout as given, model in the other layout, inputs in it, note)``; ``None``s with the reason in the note
    when the input is not 4-d or the model cannot be copied or run in the other layout."""
    if inputs[0].dim() != 4:
        return None, None, (), f"layouts not compared: the input is {inputs[0].dim()}-d, not (N, C, H, W)"
    layout = _layout_of(inputs[0])
    memory_format = torch.contiguous_format if layout == CHANNELS_LAST else torch.channels_last
    try:
        other = copy.deepcopy(model).to(memory_format=memory_format)
        other_inputs = tuple(t.contiguous(memory_format=memory_format) if t.dim() == 4 else t for t in inputs)
        other(*other_inputs)
    except (RuntimeError, TypeError, ValueError, copy.Error) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return None, None, (), f"layouts not compared: the model does not run in the other layout ({reason})"
    return layout, other, other_inputs, ""


def _as_inputs(model: nn.Module, example_input: Any, input_shape: Sequence[int] | None) -> tuple[Tensor, ...]:
    if (example_input is None) == (input_shape is None):
        raise ValueError(
            "profile: give exactly one of example_input (a tensor) and input_shape (e.g. (1, 3, 224, 224))"
        )
    if isinstance(example_input, Tensor):
        return (example_input,)
    if isinstance(example_input, Sequence) and example_input and all(isinstance(t, Tensor) for t in example_input):
        return tuple(example_input)
    shape = input_shape if input_shape is not None else example_input
    if not isinstance(shape, Sequence) or not shape or not all(is_int(s) and s >= 1 for s in shape):
        raise ValueError(
            f"profile: expected a tensor, a tuple of tensors or a shape of positive ints such as (1, 3, 224, 224), "
            f"got {shape!r}"
        )
    floating = [p.dtype for p in model.parameters() if p.is_floating_point()]
    dtype = floating[0] if floating else torch.get_default_dtype()
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(tuple(shape), generator=generator).to(dtype),)


def _check_cpu(model: nn.Module, inputs: tuple[Tensor, ...]) -> None:
    devices = {t.device.type for t in (*inputs, *model.parameters(), *model.buffers())}
    if devices - {"cpu"}:
        raise ValueError(
            f"profile: measures on the CPU against the CPU's peaks; got tensors on {sorted(devices)} "
            f"(move the model and input to the CPU)"
        )


def _model_name(model: nn.Module) -> str:
    """The name ``create_model`` gave the instance, else the op's registered name, else the class name."""
    if isinstance(model.__dict__.get("name"), str):
        return model.__dict__["name"]
    return type(model).__dict__.get("registry_name") or type(model).__name__


def _dry_run(model: nn.Module, inputs: tuple[Tensor, ...], name: str) -> None:
    try:
        model(*inputs)
    except RuntimeError as error:
        shapes = ", ".join("x".join(map(str, t.shape)) for t in inputs)
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"profile: {name} cannot run on input {shapes}: {reason}") from None


def profile(
    model: nn.Module,
    example_input: Tensor | Sequence[Tensor] | Sequence[int] | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    threads: int | None = None,
    repeats: int = 30,
    warmup: int = 5,
    peaks: MachinePeaks | None = None,
    name: str | None = None,
    layout: bool = True,
) -> Profile:
    """Profile ``model`` on ``example_input`` (a tensor, a tuple of tensors, or a shape filled with N(0, 1)).

    ``threads`` sets the intra-op threads for the measurement (restored after); ``repeats`` timed forward passes
    follow ``warmup`` untimed ones, for the rows (with hooks) and for the model (without). ``peaks`` defaults to
    this machine's cached peaks at that thread count (measured once, a few seconds, when not cached yet). The
    model's train/eval flags are restored after. ``layout`` (4-d inputs) also times a copy of the model in the other
    memory layout, interleaved, and marks the rows it speeds up by :data:`LAYOUT_FLAG` or more (twice the passes).

    ``name`` labels the report (default: the model's registered name, else its class name). For example,
    ``profile(create_op("conv", 8, 8), (1, 8, 16, 16)).macs == 8 * 8 * 9 * 16 * 16``.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"profile: model must be an nn.Module, got {type(model).__name__}")
    name = name or _model_name(model)
    inputs = _as_inputs(model, example_input if input_shape is None else None, input_shape)
    _check_cpu(model, inputs)
    with use_threads(threads) as used, eval_no_grad(model), LoadWatch() as watch:
        _dry_run(model, inputs, name)
        counts = count_layers(model, inputs)
        given, other, other_inputs, note = _other_layout(model, inputs) if layout else (None, None, (), "")
        runs = [(model, inputs)] + ([(other, other_inputs)] if other is not None else [])
        row_times = _time_rows(runs, repeats, warmup)
        latencies = interleaved([lambda m=m, i=i: m(*i) for m, i in runs], repeats=repeats, warmup=warmup)
        peaks = peaks if peaks is not None else machine_peaks(used)
    dtype = inputs[0].dtype
    other_rows = row_times[1] if other is not None else None
    layers = tuple(_cost(row, row_times[0], other_rows, given, peaks, dtype) for row in counts.layers)
    return Profile(
        model=name,
        input_shapes=tuple(tuple(t.shape) for t in inputs),
        dtype=str(dtype).removeprefix("torch."),
        threads=used,
        layers=layers,
        params=counts.params,
        macs=counts.macs,
        bytes=counts.bytes,
        latency=latencies[0],
        peaks=peaks,
        warmup=warmup,
        load_average=watch.load.load_before,
        layout=given,
        other_layout_latency=latencies[1] if other is not None else None,
        layout_note=note,
        fingerprint=fingerprint(used),
        load=watch.load,
    )


def _cost(
    row: LayerCount,
    times: dict,
    other_times: dict | None,
    layout: str | None,
    peaks: MachinePeaks,
    dtype: torch.dtype,
) -> LayerCost:
    key = (row.name, row.own_ops)
    timing = times.get(key) or summarize([0.0])
    other = other_times.get(key) if other_times is not None else None
    return LayerCost(
        name=row.name or ROOT,
        type=row.type,
        calls=row.calls,
        params=row.params,
        macs=row.macs,
        bytes=row.bytes,
        macs_source=row.macs_source,
        own_ops=row.own_ops,
        median_ms=timing.median_ms,
        iqr_ms=timing.iqr_ms,
        roofline_ms=peaks.roofline_ms(row.flops, row.bytes, dtype),
        bound=peaks.bound(row.flops, row.bytes, dtype),
        layout=layout if other_times is not None else None,
        other_layout_ms=other.median_ms if other is not None else None,
    )


def waterline(
    model: nn.Module, example_input: Tensor | Sequence[Tensor], peaks: MachinePeaks
) -> tuple[float, ModelCount]:
    """The waterline of ``model`` on ``example_input`` under ``peaks`` without timing anything, and the counts: the
    sum over the profile's rows of ``max(FLOPs / peak, bytes / bandwidth)``, what ``profile(...).waterline_ms``
    gives at those peaks. For a convzoo op (one row) it is the op's own roofline: inputs, weights and outputs
    moved once, its MACs at the compute roof."""
    inputs = (example_input,) if isinstance(example_input, Tensor) else tuple(example_input)
    with eval_no_grad(model):
        counts = count_layers(model, inputs)
    dtype = inputs[0].dtype
    return sum(peaks.roofline_ms(row.flops, row.bytes, dtype) for row in counts.layers), counts
