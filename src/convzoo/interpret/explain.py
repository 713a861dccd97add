"""The ``convzoo explain`` pipeline: methods run on a model and an image, drawn into one report page.

:func:`explain_model` works on any ``nn.Module`` with convolutions and an input tensor; :func:`explain_checkpoint`
reads the image as the checkpoint's training images were read (size, channels, mean, std) and calls it;
:func:`compare_checkpoints` draws the layer-by-layer CKA heat map and the filter comparison of two checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from convzoo.core.names import unknown_name_message
from convzoo.interpret.report import Report, Section, heatmap_png, image_png, plot_png

__all__ = [
    "EXPLAIN_METHODS",
    "COMPARE_METHODS",
    "Explanation",
    "explain_model",
    "explain_checkpoint",
    "compare_checkpoints",
]

EXPLAIN_METHODS = (
    "saliency",
    "occlusion",
    "deconvolution",
    "guided_backprop",
    "integrated_gradients",
    "linear",
    "sensitivity",
    "deconvnet",
    "activation_max",
    "filters",
    "kernel_clusters",
    "spectra",
)
COMPARE_METHODS = ("cka", "cka_rbf", "filters")


@dataclass
class Explanation:
    """What an explain run wrote: the page, every file, the class explained and each method's seconds."""

    page: Path
    written: list[Path]
    target: int | None
    seconds: dict[str, float] = field(default_factory=dict)


def _methods(methods: Sequence[str] | str, known: Sequence[str]) -> list[str]:
    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else list(methods)
    if not names or not all(names):
        raise ValueError(f"explain: give at least one method of {', '.join(known)}")
    for name in names:
        if name not in known:
            raise ValueError(unknown_name_message("method", name, known))
    return names


def _map(attribution: Tensor) -> Tensor:
    return attribution[0].abs().sum(0)  # (H, W): channels summed


def _attribution(method: str, model: nn.Module, x: Tensor, target: int, options: dict, section: Section) -> None:
    from convzoo.interpret.attribution import attribute

    values = attribute(model, x, method, target, progress=options["progress"], **options["occlusion"])
    section.figure("map", heatmap_png(_map(values)), f"{method}.png")
    section.figure("over the image", heatmap_png(_map(values), background=x[0]), f"{method}_overlay.png")


def _linear(model: nn.Module, x: Tensor, target: int, options: dict, section: Section) -> None:
    from convzoo.interpret.linear import linear_contributions, linear_interpreter

    row, contributions, bias = linear_contributions(model, x[:1], target)
    total = float(contributions.sum()) + bias
    interpreter = linear_interpreter(model, x[:1])
    output = float(interpreter.output.reshape(-1)[target])
    section.text = (
        f"Row {target} of the input-dependent linear map A(x) (S10): sum(A_row * x) + b = {total:.6g} "
        f"reproduces the output {output:.6g} (bias b = {bias:.6g})."
    )
    if interpreter.frozen_unknown:
        section.text += f" Frozen as constants (no linear form known): {', '.join(interpreter.frozen_unknown)}."
    section.figure(
        "A row (the equivalent filter)", heatmap_png(row[0].sum(0), cmap="coolwarm", symmetric=True), "linear_row.png"
    )
    section.figure(
        "A row * x (each pixel's contribution)",
        heatmap_png(contributions[0].sum(0), cmap="coolwarm", symmetric=True),
        "linear_contributions.png",
    )


def _sensitivity(model: nn.Module, x: Tensor, target: int, options: dict, section: Section) -> None:
    from convzoo.interpret.attribution import occlusion_sensitivity

    grid = occlusion_sensitivity(model, x[:1], target, progress=options["progress"], **options["occlusion"])
    section.text = "p(class) with a grey square at each position (S101): dark where the class depends on the image."
    section.figure(
        "p(class | occluded)", heatmap_png(grid, cmap="viridis", size=(x.shape[-1], x.shape[-2])), "sensitivity.png"
    )


def _deconvnet(model: nn.Module, x: Tensor, target: int, options: dict, section: Section) -> None:
    from convzoo.interpret.attribution import guided_projection
    from convzoo.interpret.cka import default_layers

    layers = [options["layer"]] if options["layer"] else default_layers(model)
    for layer in layers:
        projection, channel = guided_projection(model, x[:1], layer)
        section.figure(
            f"{layer}, channel {channel}", image_png(projection[0]), f"deconvnet_{layer.replace('.', '_')}.png"
        )


def _activation_max(model: nn.Module, x: Tensor, target: int, options: dict, section: Section) -> None:
    from convzoo.interpret.activation_max import activation_maximisation

    result = activation_maximisation(model, tuple(x.shape[1:]), target, options["layer"], progress=options["progress"])
    section.text = f"objective {result.objective[0]:.4g} → {result.objective[1]:.4g} (jitter, rescaling, L2, TV)."
    section.figure(f"unit {target}", image_png(result.image), "activation_max.png")


def _filters(model: nn.Module, x: Tensor, target: int, options: dict, section: Section) -> None:
    from convzoo.interpret.filter_stats import HEADERS, filter_statistics

    stats = filter_statistics(model)
    if not stats:
        section.text = "no 3×3 convolution"
        return
    section.table(HEADERS, [s.row() for s in stats])

    def draw(axes) -> None:
        axes.plot([s.variance_entropy for s in stats], marker="o")
        axes.set_xlabel("3×3 layer (in order)")
        axes.set_ylabel("variance entropy")

    section.figure("variance entropy per layer", plot_png(draw), "filters_entropy.png")


def _kernel_clusters(model: nn.Module, x: Tensor, target: int, options: dict, section: Section) -> None:
    from convzoo.interpret.kernel_clusters import classify_kernels, cluster_kernels, depthwise_kernels

    found = depthwise_kernels(model)
    if not found:
        section.text = "no depthwise convolution"
        return
    rows = []
    for name, kernels in found.items():
        fractions = classify_kernels(kernels).fractions
        rows.append((name, kernels.shape[0], *(fractions[f] for f in fractions)))
        centroids, classes, _ = cluster_kernels(kernels, clusters=min(6, kernels.shape[0]))
        for index, (centroid, label) in enumerate(zip(centroids, classes.labels, strict=True)):
            png = heatmap_png(centroid, cmap="coolwarm", symmetric=True, size=(56, 56))
            section.figure(f"{name} centroid {index}: {label}", png, f"clusters_{name.replace('.', '_')}_{index}.png")
    section.table(("layer", "kernels", "dog", "gaussian", "d1", "d2", "d2_cross", "unclassified"), rows)


def _spectra(model: nn.Module, x: Tensor, target: int, options: dict, section: Section) -> None:
    from convzoo.interpret.cka import default_layers
    from convzoo.interpret.spectra import feature_spectra, high_frequency_share

    spectra = feature_spectra(model, x, default_layers(model))
    rows = []
    for name, spectrum in spectra.items():
        rows.append((name, "x".join(str(s) for s in spectrum.shape), high_frequency_share(spectrum)))
        section.figure(
            f"{name} log power",
            heatmap_png(spectrum.clamp_min(1e-12).log(), size=(96, 96)),
            f"spectrum_{name.replace('.', '_')}.png",
        )
    section.table(("layer", "map", "high-frequency share"), rows)


_RUN: dict[str, Callable[..., None]] = {
    "linear": _linear,
    "sensitivity": _sensitivity,
    "deconvnet": _deconvnet,
    "activation_max": _activation_max,
    "filters": _filters,
    "kernel_clusters": _kernel_clusters,
    "spectra": _spectra,
}
_TITLES = {
    "saliency": "Saliency (|∂ logit / ∂ x|, Captum)",
    "occlusion": "Occlusion (Captum)",
    "deconvolution": "Deconvolution (Captum)",
    "guided_backprop": "Guided backprop (Captum)",
    "integrated_gradients": "Integrated gradients (Captum)",
    "linear": "Linear interpreter (S10)",
    "sensitivity": "Occlusion sensitivity (S101)",
    "deconvnet": "Deconvnet projections of each stage's strongest unit (S101)",
    "activation_max": "Activation maximisation (S83)",
    "filters": "Filter distribution statistics (S87)",
    "kernel_clusters": "Depthwise kernel clusters (S56)",
    "spectra": "Feature spectra (S42)",
}


def explain_model(
    model: nn.Module,
    x: Tensor,
    methods: Sequence[str] | str,
    out: str | Path,
    *,
    target: int | None = None,
    window: int = 16,
    stride: int = 8,
    layer: str | None = None,
    title: str = "convzoo explain",
    progress: bool = False,
) -> Explanation:
    """Run ``methods`` on ``model`` for one input ``x`` ``(1, C, H, W)``; write PNGs and ``index.html`` in ``out``."""
    from convzoo.interpret.attribution import default_target

    names = _methods(methods, EXPLAIN_METHODS)
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError(f"explain: expected one image (1, C, H, W), got shape {tuple(x.shape)}")
    model.eval()
    target = default_target(model, x) if target is None else target
    with torch.no_grad():
        probability = float(model(x).reshape(1, -1).softmax(1)[0, target])
    report = Report(title, f"class {target}, p = {probability:.4f}; input {'x'.join(str(s) for s in x.shape)}")
    report.section("Input").figure("input", image_png(x[0]), "input.png")
    options = {"progress": progress, "occlusion": {"window": window, "stride": stride}, "layer": layer}
    seconds = {}
    for name in names:
        section = report.section(_TITLES[name])
        start = time.perf_counter()
        if name in _RUN:
            _RUN[name](model, x, target, options, section)
        else:
            _attribution(
                name,
                model,
                x,
                target,
                {**options, "occlusion": options["occlusion"] if name == "occlusion" else {}},
                section,
            )
        seconds[name] = time.perf_counter() - start
        section.text = (section.text + f" ({seconds[name]:.2f} s)").strip()
    written = report.write(out)
    return Explanation(written[-1], written, target, seconds)


def _load_image(checkpoint_data: dict, image: str | Path, size: int | None) -> Tensor:
    from convzoo.data.imagefolder import read_image

    if not Path(image).is_file():
        raise FileNotFoundError(f"no image file {str(image)!r}")
    channels = int(checkpoint_data.get("channels", 3))
    size = size or (checkpoint_data.get("image_size") or [None])[0]
    if not size:
        raise ValueError("explain: the checkpoint records no image size; give one with --size")
    tensor = read_image(Path(image), int(size), channels)  # (C, H, W) in [0, 1]
    if checkpoint_data.get("mean") and checkpoint_data.get("std"):
        tensor = (tensor - torch.tensor(checkpoint_data["mean"]).view(-1, 1, 1)) / torch.tensor(
            checkpoint_data["std"]
        ).view(-1, 1, 1)
    return tensor[None]


def explain_checkpoint(
    checkpoint: str | Path,
    image: str | Path,
    methods: Sequence[str] | str,
    out: str | Path,
    *,
    size: int | None = None,
    **options,
) -> Explanation:
    """:func:`explain_model` on a checkpoint and an image file read as its training images were."""
    from convzoo.train.checkpoint import build_from_checkpoint

    _methods(methods, EXPLAIN_METHODS)  # a bad method fails before the model loads
    model, saved = build_from_checkpoint(checkpoint)
    x = _load_image(saved.meta.get("data", {}), image, size)
    return explain_model(model, x, methods, out, title=f"convzoo explain: {saved.describe()}", **options)


def _inputs(saved_data: dict, count: int, size: int | None, channels: int) -> Tensor:
    name = saved_data.get("name")
    if name:
        from convzoo.data import load_dataset

        dataset = load_dataset(name, "test")
        return torch.stack([dataset[i][0] for i in range(min(count, len(dataset)))])
    if not size:
        raise ValueError("explain --compare: the checkpoint records no dataset; give an input size with --size")
    return torch.randn(count, channels, size, size, generator=torch.Generator().manual_seed(0))


def compare_checkpoints(
    checkpoint_a: str | Path,
    checkpoint_b: str | Path,
    methods: Sequence[str] | str,
    out: str | Path,
    *,
    count: int = 64,
    size: int | None = None,
) -> Explanation:
    """CKA heat maps (linear and RBF, S112) and the filter comparison (S87) of two checkpoints on ``count`` inputs
    of the first checkpoint's test set (noise of ``size`` where it records none)."""
    from convzoo.interpret.cka import cka_matrix
    from convzoo.interpret.filter_stats import compare_filters
    from convzoo.train.checkpoint import build_from_checkpoint

    names = _methods(methods, COMPARE_METHODS)
    model_a, saved_a = build_from_checkpoint(checkpoint_a)
    model_b, saved_b = build_from_checkpoint(checkpoint_b)
    inputs = _inputs(saved_a.meta.get("data", {}), count, size, saved_a.architecture["in_chans"])
    report = Report(
        "convzoo explain --compare",
        f"A: {saved_a.describe()} ({checkpoint_a}); B: {saved_b.describe()} ({checkpoint_b})",
    )
    seconds = {}
    for name in names:
        start = time.perf_counter()
        if name in ("cka", "cka_rbf"):
            kernel = "linear" if name == "cka" else "rbf"
            section = report.section(f"{kernel} CKA between the layers of A and B (S112), {inputs.shape[0]} inputs")
            matrix, layers_a, layers_b = cka_matrix(model_a, model_b, inputs, kernel=kernel)
            section.figure("CKA heat map (rows: A, columns: B)", _cka_png(matrix, layers_a, layers_b), f"{name}.png")
            section.table(("A \\ B", *layers_b), [(a, *row.tolist()) for a, row in zip(layers_a, matrix, strict=True)])
        else:
            section = report.section("Filter distributions, symmetric KL per 3×3 layer (S87)")
            section.table(("layer", "symmetric KL"), compare_filters(model_a, model_b))
        seconds[name] = time.perf_counter() - start
    written = report.write(out)
    return Explanation(written[-1], written, None, seconds)


def _cka_png(matrix: Tensor, rows: Sequence[str], cols: Sequence[str]) -> bytes:
    def draw(axes) -> None:
        shown = axes.imshow(matrix.numpy(), vmin=0.0, vmax=1.0, cmap="magma", origin="lower")
        axes.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
        axes.set_yticks(range(len(rows)), rows, fontsize=7)
        axes.figure.colorbar(shown, ax=axes)

    return plot_png(draw, figsize=(5.5, 4.5))
